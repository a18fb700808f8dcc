// The deployed students' recurrent loops as kernels of their own: no per-step dispatch, the
// recurrent matrix prepacked once per call into the panels its per-step product streams, the
// gate activations vectorized. Used by StudentTaggerImpl::infer() on CPU (never in training:
// no autograd here). Compiled once per instruction set (AVX-512, AVX2 + FMA) and chosen at run
// time; on a CPU with neither, available() is false and infer() keeps its ATen paths.
#pragma once

#include <cstdint>
#include <vector>

namespace kdx::models::kernels {

// The instruction set the kernels run with here: "avx512", "avx2" or "" (none: not available).
const char* isa();
inline bool available() {
  return isa()[0] != '\0';
}

// A [n, k] row-major matrix W (a Linear weight; y = x W^T) as panels of output columns, each
// stored row by row ([k][width], one contiguous stream for the per-step product): 128 columns
// wide with AVX-512 (64 for a last odd panel), 64 with AVX2. n must be a multiple of 64.
struct PackedMatrix {
  int64_t n = 0, k = 0;
  std::vector<float> data;
};
PackedMatrix pack_transposed(const float* w, int64_t n, int64_t k);

// One direction of one bidirectional LSTM layer over a batch of padded sequences. Row b has
// lengths[b] valid steps; the backward direction reads row b from lengths[b] - 1 down to 0.
// xp [batch, time, 4 hidden]: x W_ih^T + b_ih + b_hh (PyTorch's gate order i, f, g, o).
// Writes h of row b at step t to out[(b * time + t) * out_stride + j]; steps past a row's length
// are not written. hidden must be a multiple of 16.
struct LstmDirection {
  const PackedMatrix* w_hh = nullptr;  // pack_transposed(weight_hh [4 hidden, hidden])
  const float* xp = nullptr;
  const int64_t* lengths = nullptr;
  int64_t batch = 0, time = 0, hidden = 0;
  bool reverse = false;
  float* out = nullptr;
  int64_t out_stride = 0;
};
void lstm_direction(const LstmDirection& a);

// Both directions of one SRU / SRU++ layer at inference. u [batch, time, 2, blocks, hidden]: the
// projection in the kernel's layout (per direction, block-major: x~, f, r and, with 4 blocks, the
// projected highway input), x [batch, time, 2 hidden] the layer input (the highway input when
// blocks == 3, times scale_x), v and b [2 directions, 2 (f, r), hidden]. Writes h to out
// [batch, time, 2 hidden]; steps past a row's length are not written. hidden: a multiple of 16.
struct SruLayerArgs {
  const float* u = nullptr;
  const float* x = nullptr;
  const float* v = nullptr;
  const float* b = nullptr;
  const int64_t* lengths = nullptr;
  int64_t batch = 0, time = 0, hidden = 0, blocks = 3;
  float scale_x = 1.f;
  float* out = nullptr;
};
void sru_layer(const SruLayerArgs& a);

// The sum of n floats, read with the kernels' loads: the benchmarks' probe of how fast this
// machine streams a buffer from where it fits (the LSTM's recurrent product is such a read).
float stream_sum(const float* p, int64_t n);

}  // namespace kdx::models::kernels
