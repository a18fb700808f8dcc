// The deployed students' recurrent loops as kernels of their own: no per-step dispatch, the
// recurrent matrix prepacked once per call into the panels its per-step product streams, the
// gate activations vectorized. Used by StudentTaggerImpl::infer() on CPU (never in training:
// no autograd here). Compiled once per instruction set (AVX-512, AVX2 + FMA) and chosen at run
// time; on a CPU with neither, available() is false and infer() keeps its ATen paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
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
// Storage on 64-byte boundaries: every 16-float load of a panel row then reads one cache line,
// not two (malloc gives 16-byte alignment, and large blocks land 16 bytes past a page).
template <class T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const CacheAligned<U>&) const {
    return false;
  }
};
using AlignedFloats = std::vector<float, CacheAligned<float>>;

struct PackedMatrix {
  int64_t n = 0, k = 0;
  AlignedFloats data;
};
PackedMatrix pack_transposed(const float* w, int64_t n, int64_t k);

// An LSTM's weight_hh [4 hidden, hidden] for lstm_layer: its rows reordered so that each
// 16 hidden units' four gates are 64 adjacent columns (a part of the columns then holds
// everything its hidden units' cell update needs), then packed as above.
PackedMatrix pack_lstm(const float* w_hh, int64_t hidden);

// One direction of one bidirectional LSTM layer over a batch of padded sequences. Row b has
// lengths[b] valid steps; the backward direction reads row b from lengths[b] - 1 down to 0.
// xp [batch, time, 4 hidden]: x W_ih^T + b_ih + b_hh (PyTorch's gate order i, f, g, o).
// Writes h of row b at step t to out[(b * time + t) * out_stride + j]; steps past a row's length
// are not written. hidden must be a multiple of 16.
struct LstmDirection {
  const PackedMatrix* w_hh = nullptr;  // pack_lstm(weight_hh, hidden)
  const float* xp = nullptr;
  const int64_t* lengths = nullptr;
  int64_t batch = 0, time = 0, hidden = 0;
  bool reverse = false;
  float* out = nullptr;
  int64_t out_stride = 0;
};

// Both directions of one layer on up to `threads` threads (OpenMP's, the pool LibTorch uses, so
// no second pool spins against it). With 2 or more, either the two directions run side by side,
// one thread each, or, at batch < 4 where one direction's W_hh is larger than half of one
// core's L2, each step of each direction is split across the threads by hidden units (whole
// panels) with a barrier after every step: each core's share of W_hh then stays in its own L2
// instead of every step streaming the whole matrix from L3. split_steps() is that rule.
void lstm_layer(const LstmDirection& fwd, const LstmDirection& bwd, int threads);
bool split_steps(int64_t batch, int64_t hidden, int threads);

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

// The LSTM's training recurrence (lstm_train.h), one step of one direction for `rows` rows at
// a time: the cell update and its gradient, any hidden size (vectorized by 16 units where this
// CPU has the kernels, plain loops otherwise). Rows are strided (a batch-first [batch, time, .]
// tensor's step t), gates in PyTorch's order i, f, g, o.
struct LstmCellForward {
  float* g = nullptr;  // in: pre-activations [rows][4 hidden]; out: the activated gates
  int64_t g_stride = 0;
  const float* c_prev = nullptr;  // the previous step's cells; nullptr: zeros (the first step)
  float* c = nullptr;             // out: this step's cells (c_prev's stride)
  int64_t c_stride = 0;
  float* h = nullptr;  // out
  int64_t h_stride = 0;
  int64_t rows = 0, hidden = 0;
};
void lstm_cell_forward(const LstmCellForward& a);
struct LstmCellBackward {
  const float* g = nullptr;  // the activated gates lstm_cell_forward left
  int64_t g_stride = 0;
  const float* c_prev = nullptr;  // nullptr at the first step
  const float* c = nullptr;
  int64_t c_stride = 0;
  const float* dy = nullptr;  // this step's output gradient
  int64_t dy_stride = 0;
  const float* dh = nullptr;  // [rows][hidden]: through h from the next step; nullptr: none
  float* dc = nullptr;        // [rows][hidden]: in, from the next step; out, to the previous
  float* dg = nullptr;        // out: the gradient of the pre-activations [rows][4 hidden]
  int64_t dg_stride = 0;
  int64_t rows = 0, hidden = 0;
};
void lstm_cell_backward(const LstmCellBackward& a);

// The sum of n floats, read with the kernels' loads: the benchmarks' probe of how fast this
// machine streams a buffer from where it fits (the LSTM's recurrent product is such a read).
float stream_sum(const float* p, int64_t n);

}  // namespace kdx::models::kernels
