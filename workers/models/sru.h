// SRU (Lei et al., 2018) and SRU++ (Lei, 2021) layers as the reference implementation
// (asappresearch/sru) defines them. The elementwise recurrence runs as a custom autograd
// function whose forward and backward are plain float loops (parallel over batch x hidden),
// measured several times faster than a per-step LibTorch loop; on CUDA tensors the same
// recurrence runs as LibTorch ops (device-generic). Either way in fp32: under autocast the
// projections run in bf16/fp16 and the recurrence casts its inputs up.
//
// Per direction, with U = W x split into (x~, f', r') and a highway input x_h:
//   f_t = sigmoid(f'_t + v_f * c_{t-1} + b_f)      r_t = sigmoid(r'_t + v_r * c_{t-1} + b_r)
//   c_t = f_t * c_{t-1} + (1 - f_t) * x~_t         h_t = r_t * c_t + (1 - r_t) * s * x_h,t
// A layer whose input is as wide as its output (2 x hidden) uses the input itself as x_h,
// each direction its own half; any other layer projects it (a fourth block of W). s is 1, or
// sqrt(1 + 2 e^{b_r}) with `rescale`.
#pragma once

#include <torch/torch.h>

namespace kdx::models {

// Both directions at once, in the layout the input projection produces, so no transposes
// or copies surround the kernel: U [B, T, 2, D, K] with K = 3 (x~, f', r') or 4 (+ the
// highway input); when K = 3 the highway input is x [B, T, 2 * D] (direction d reads
// x[..., d * D : (d + 1) * D]). v and b are [2 directions, 2 (f, r), D]; lengths [B] (int64).
// Direction 1 runs each sequence from its last valid step; positions past a sequence's
// length output 0. Returns h [B, T, 2, D].
torch::Tensor sru_bidirectional(const torch::Tensor& U, const torch::Tensor& x,
                                const torch::Tensor& v, const torch::Tensor& b,
                                const torch::Tensor& lengths, double scale_x = 1.0);
// The same recurrence as a per-step LibTorch loop (autograd through ordinary ops): the
// reference the custom backward is tested against, and the path for CUDA tensors.
torch::Tensor sru_bidirectional_naive(const torch::Tensor& U, const torch::Tensor& x,
                                      const torch::Tensor& v, const torch::Tensor& b,
                                      const torch::Tensor& lengths, double scale_x = 1.0);

struct SruOptions {
  int attention_dim = 0;           // > 0: an SRU++ layer (self-attention replaces the projection)
  double highway_bias = 0.0;       // initial b_r (the reference's SRU uses 0, its SRU++ -2)
  bool rescale = false;            // scale the highway input by sqrt(1 + 2 e^{highway_bias})
  double dropout = 0.0;            // dropout applied to this layer's output (init rescaling)
  double attention_dropout = 0.0;  // SRU++: dropout on the attention weights (training only)
};

// One bidirectional SRU or SRU++ layer.
struct SruLayerImpl : torch::nn::Module {
  SruLayerImpl(int input, int hidden, SruOptions options);
  // x [B, T, input], mask [B, T] -> [B, T, 2 * hidden]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask,
                        const torch::Tensor& lengths);
  // U [B, T, 2, hidden, K]: the input projection (SRU) or the attention sublayer (SRU++).
  torch::Tensor project(const torch::Tensor& x, const torch::Tensor& mask);
  // forward() at inference on CPU in float through kernels::sru_layer (hidden a multiple of 16,
  // kernels::available()): the projection's rows reordered once (kept until the weights change)
  // so that U comes out in the kernel's block-major layout. No autograd.
  torch::Tensor infer(const torch::Tensor& x, const torch::Tensor& mask,
                      const torch::Tensor& lengths);
  int input, hidden;
  SruOptions options;
  int blocks;                    // K: 3 when the input is the highway term, else 4
  double scale_x;                // highway scale s
  torch::nn::Linear W{nullptr};  // SRU: x -> U
  torch::nn::Linear q{nullptr}, key{nullptr}, value{nullptr}, o{nullptr};  // SRU++
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor alpha, v, b;  // v, b: [2 directions, 2 (f, r), hidden]

 private:
  torch::Tensor block_major_;  // the U projection's weight, rows as [2, K, hidden]
  std::pair<const void*, int64_t> block_major_from_{nullptr, -1};
};
TORCH_MODULE(SruLayer);

}  // namespace kdx::models
