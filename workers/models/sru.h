// SRU (Lei et al., 2017/2018) and SRU++ (Lei, 2021) layers. The elementwise recurrence
// runs as a custom autograd function whose forward and backward are plain float loops
// (parallel over batch x hidden), measured several times faster than a per-step LibTorch
// loop; on CUDA tensors the same recurrence runs as LibTorch ops.
//
// Per direction, with U = W x split into (x~, f', r') and a highway input x_h:
//   f_t = sigmoid(f'_t + v_f * c_{t-1} + b_f)      r_t = sigmoid(r'_t + v_r * c_{t-1} + b_r)
//   c_t = f_t * c_{t-1} + (1 - f_t) * x~_t         h_t = r_t * c_t + (1 - r_t) * x_h,t
#pragma once

#include <torch/torch.h>

namespace kdx::models {

// Both directions at once, in the layout the input projection produces, so no transposes
// or copies surround the kernel: U [B, T, 2, D, K] with K = 3 (x~, f', r') or 4 (+ the
// highway input); when K = 3 the highway input is x [B, T, D] itself. v and b are
// [2 directions, 2 (f, r), D]; lengths [B] (int64). Direction 1 runs each sequence from its
// last valid step; positions past a sequence's length output 0. Returns h [B, T, 2, D].
torch::Tensor sru_bidirectional(const torch::Tensor& U, const torch::Tensor& x,
                                const torch::Tensor& v, const torch::Tensor& b,
                                const torch::Tensor& lengths);
// The same recurrence as a per-step LibTorch loop (autograd through ordinary ops): the
// reference the custom backward is tested against, and the path for CUDA tensors.
torch::Tensor sru_bidirectional_naive(const torch::Tensor& U, const torch::Tensor& x,
                                      const torch::Tensor& v, const torch::Tensor& b,
                                      const torch::Tensor& lengths);

// One bidirectional SRU layer; `attention_dim` > 0 makes it an SRU++ layer (the input
// projection becomes a single-head self-attention sublayer).
struct SruLayerImpl : torch::nn::Module {
  SruLayerImpl(int input, int hidden, int attention_dim);
  // x [B, T, input], mask [B, T] -> [B, T, 2 * hidden]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask,
                        const torch::Tensor& lengths);
  int input, hidden, attention_dim;
  bool project_highway;
  torch::nn::Linear W{nullptr};                                          // SRU: x -> U
  torch::nn::Linear q{nullptr}, k{nullptr}, vproj{nullptr}, o{nullptr};  // SRU++
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor alpha, v, b;  // v, b: [2 directions, 2, hidden]
};
TORCH_MODULE(SruLayer);

}  // namespace kdx::models
