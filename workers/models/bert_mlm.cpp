#include "workers/models/bert_mlm.h"

#include <sys/stat.h>

#include "common/atomic_file.h"
#include "workers/models/hf_checkpoint.h"

namespace kdx::models {
namespace {
struct Holder : torch::nn::Module {};
}  // namespace

BertMlmImpl::BertMlmImpl(const BertConfig& c) {
  bert = register_module("bert", BertModel(c));
  cls = register_module("cls", std::make_shared<Holder>());
  predictions = cls->register_module("predictions", std::make_shared<Holder>());
  transform = predictions->register_module("transform", std::make_shared<Holder>());
  dense = transform->register_module("dense", torch::nn::Linear(c.hidden, c.hidden));
  torch::nn::init::normal_(dense->weight, 0.0, c.initializer_range);
  torch::nn::init::zeros_(dense->bias);
  norm = transform->register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden}).eps(c.layer_norm_eps)));
  bias = predictions->register_parameter("bias", torch::zeros({c.vocab_size}));
}

torch::Tensor BertMlmImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask,
                                   const torch::Tensor& positions) {
  auto h = bert(ids, mask);  // [B, T, H]
  auto picked = h.reshape({-1, h.size(2)}).index_select(0, positions);
  // LayerNorm in its weights' dtype: CPU autocast (LibTorch 1.13) leaves a bf16 input to it.
  auto t = norm(torch::gelu(dense(picked)).to(norm->weight.scalar_type()));
  return torch::addmm(bias, t, bert->embeddings->word_embeddings->weight.t());
}

void save_mlm_checkpoint(BertMlmImpl& model, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  write_weights(model, dir + "/model.safetensors");
  auto cfg = bert_config_to_hf(model.bert->config);
  cfg["architectures"] = {"BertForMaskedLM"};
  write_file_atomic(dir + "/config.json", cfg.dump(2) + "\n");
}

}  // namespace kdx::models
