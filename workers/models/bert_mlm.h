// BERT with its masked-language-model head, in Hugging Face's BertForMaskedLM names
// (cls.predictions.*; the decoder shares the word embeddings), for the pretrain stage. Its
// checkpoint directory is what a teacher's init_from loads.
#pragma once

#include <string>

#include "workers/models/bert.h"

namespace kdx::models {

class BertMlmImpl : public torch::nn::Module {
 public:
  explicit BertMlmImpl(const BertConfig& c);
  // Vocabulary logits [N, V] at the N positions of `positions` (flat indices into [B * T]):
  // only masked positions are scored, which is most of the saving of an MLM step.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask,
                        const torch::Tensor& positions);
  BertModel bert{nullptr};
  std::shared_ptr<torch::nn::Module> cls, predictions, transform;
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor bias;  // [V]
};
TORCH_MODULE(BertMlm);

// config.json (BertForMaskedLM), model.safetensors (bert.* and cls.predictions.*).
void save_mlm_checkpoint(BertMlmImpl& model, const std::string& dir);

}  // namespace kdx::models
