#include "workers/models/conv_frontend.h"

#include "common/error.h"

namespace kdx::models {

std::string check_conv_options(const ConvOptions& o) {
  if (o.kernels.empty()) return "kernels: empty (at least one kernel width, e.g. [1, 3, 5])";
  for (int k : o.kernels)
    if (k < 1 || k % 2 == 0)
      return "kernels: " + std::to_string(k) +
             " is not an odd width >= 1 ('same' padding needs odd widths)";
  const int n = static_cast<int>(o.kernels.size());
  for (int c : o.channels)
    if (c < 1 || c % n != 0)
      return "channels: " + std::to_string(c) + " is not a positive multiple of the " +
             std::to_string(n) + " kernel widths (each layer's channels are split equally)";
  if (!(o.dropout >= 0 && o.dropout < 1))
    return "dropout: " + std::to_string(o.dropout) + " is not in [0, 1)";
  return {};
}

ConvLayerImpl::ConvLayerImpl(int input, int channels, const std::vector<int>& kernels, double p) {
  convs = register_module("convs", torch::nn::ModuleList());
  const int each = channels / static_cast<int>(kernels.size());
  for (int k : kernels)
    convs->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(input, each, k).padding(k / 2)));
  norm = register_module("norm", torch::nn::BatchNorm1d(channels));
  dropout = register_module("dropout", torch::nn::Dropout(p));
}

ConvFrontendImpl::ConvFrontendImpl(int input, ConvOptions o) : options(std::move(o)) {
  auto bad = check_conv_options(options);
  if (bad.empty() && options.channels.empty()) bad = "channels: empty (no layers)";
  if (!bad.empty()) throw Error("conv front-end: " + bad);
  layers = register_module("layers", torch::nn::ModuleList());
  for (int c : options.channels) {
    layers->push_back(ConvLayer(input, c, options.kernels, options.dropout));
    input = c;
  }
}

torch::Tensor ConvFrontendImpl::run(const torch::Tensor& x, const torch::Tensor& mask, bool eval) {
  auto pad = (mask == 0).unsqueeze(1);  // [B, 1, T]
  auto h = x.transpose(1, 2);           // [B, C, T]: Conv1d's layout
  for (auto& m : *layers) {
    auto& layer = *m->as<ConvLayerImpl>();
    auto in = h.masked_fill(pad, 0);
    std::vector<torch::Tensor> outs;
    outs.reserve(layer.convs->size());
    for (auto& c : *layer.convs) outs.push_back(c->as<torch::nn::Conv1dImpl>()->forward(in));
    h = torch::relu(torch::cat(outs, 1));
    if (eval) {
      auto& n = *layer.norm;
      h = torch::batch_norm(h, n.weight, n.bias, n.running_mean, n.running_var,
                            /*training=*/false, /*momentum=*/0.0, n.options.eps(),
                            /*cudnn_enabled=*/true);
    } else {
      h = layer.dropout(layer.norm(h));
    }
  }
  return h.masked_fill(pad, 0).transpose(1, 2);
}

torch::Tensor ConvFrontendImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  return run(x, mask, !is_training());
}

torch::Tensor ConvFrontendImpl::infer(const torch::Tensor& x, const torch::Tensor& mask) {
  return run(x, mask, true);
}

}  // namespace kdx::models
