// The convolutional front-end of Malakhov (2022)'s ConvLSTM / ConvSRU / ConvSRU++ students,
// between the embedding and the recurrent stack: per layer one Conv1d per kernel width over
// the token axis ('same' padding), their outputs concatenated on channels, then ReLU ->
// BatchNorm1d -> Dropout; no residual.
//
// Padding: the paper passes no mask, so a batch's padding would leak into its real tokens'
// windows (a token near its sequence's end sees the padding the longest sequence forced).
// Each layer's input is zeroed at padded positions, so a real token's output depends only on
// its own sequence, as if it were unpadded (where 'same' padding adds zeros too). BatchNorm
// in training mode still counts the padded positions in its batch statistics (the zeros'
// conv response): a small, batch-dependent bias of training only; eval mode and infer() use
// the running statistics, which depend on no batch.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace kdx::models {

struct ConvOptions {
  std::vector<int> kernels = {1, 3, 5};  // odd widths: 'same' padding is symmetric
  std::vector<int> channels;             // per layer, its output channels; empty = no front-end
  double dropout = 0.1;
  int layers() const { return static_cast<int>(channels.size()); }
};
// Empty when the options build a front-end, else "<field>: <what is wrong>" (field: kernels,
// channels or dropout).
std::string check_conv_options(const ConvOptions& o);

struct ConvLayerImpl : torch::nn::Module {
  ConvLayerImpl(int input, int channels, const std::vector<int>& kernels, double dropout);
  torch::nn::ModuleList convs{nullptr};  // one Conv1d per kernel width, channels / kernels each
  torch::nn::BatchNorm1d norm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ConvLayer);

struct ConvFrontendImpl : torch::nn::Module {
  // Throws kdx::Error with check_conv_options()'s message.
  ConvFrontendImpl(int input, ConvOptions options);
  // x [B, T, input], mask [B, T] -> [B, T, channels.back()], zero at padded positions; the
  // module's mode decides BatchNorm's statistics and dropout.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  // forward() in eval mode whatever the module's mode (the deployed path: running statistics,
  // no dropout), without updating the running statistics.
  torch::Tensor infer(const torch::Tensor& x, const torch::Tensor& mask);
  int output_size() const { return options.channels.back(); }

  ConvOptions options;
  torch::nn::ModuleList layers{nullptr};

 private:
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& mask, bool eval);
};
TORCH_MODULE(ConvFrontend);

}  // namespace kdx::models
