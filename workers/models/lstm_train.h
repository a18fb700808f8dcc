// The LSTM's training recurrence as one autograd function on CPU: one direction of one layer
// over a batch-first sequence from a zero state, what a one-layer torch::nn::LSTM(batch_first)
// computes, without the per-step graph ATen's LSTM records (a dozen small ops per step, each
// dispatched and replayed backward). Forward: all input projections in one product, then per
// step one product with W_hh and one vectorized cell update (kernels::lstm_cell_forward);
// backward the same per step, then the weight gradients as three products over all steps.
// Like ATen's LSTM it steps over padding too (rows end with it; the loss ignores it).
#pragma once

#include <torch/torch.h>

namespace kdx::models {

// x [batch, time, input]; the weights as torch::nn::LSTM names them (weight_ih_l0 [4 hidden,
// input], weight_hh_l0 [4 hidden, hidden], bias_ih_l0, bias_hh_l0). Returns h [batch, time,
// hidden].
torch::Tensor lstm_train(const torch::Tensor& x, const torch::Tensor& w_ih,
                         const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                         const torch::Tensor& b_hh);

// Whether lstm_train takes x with weights `w`: both float on the CPU, no bf16 autocast, unless
// KDX_LSTM_TRAIN=aten asks for ATen's LSTM (to compare; GPUs always run ATen's, which is cuDNN's).
bool lstm_train_serves(const torch::Tensor& x, const torch::Tensor& w);

}  // namespace kdx::models
