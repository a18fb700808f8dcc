// The BERT teacher: a Hugging Face-compatible encoder (parameter names as in
// transformers' BertModel, so checkpoints load by name) and a token-classification head.
#pragma once

#include <string>

#include "workers/models/tagger.h"

namespace kdx::models {

struct BertConfig {
  int vocab_size = 0;
  int hidden = 128;
  int layers = 2;
  int heads = 2;
  int intermediate = 512;
  int max_position = 512;
  int type_vocab = 2;
  double dropout = 0.1;
  double attention_dropout = 0.1;
  double layer_norm_eps = 1e-12;
  std::string activation = "gelu";
  // Standard deviation of the normal initialisation of every weight matrix and embedding
  // (Hugging Face's initializer_range). BERT's 0.02 suits large models trained long; small
  // models trained from scratch for minutes learn their attention faster with ~0.05 (see
  // the pretrain stage in the README).
  double initializer_range = 0.02;
};

// Hugging Face config.json <-> BertConfig. Throws kdx::Error "<where>: <field>: ..." for a
// missing field or one of the wrong type; `prefix` ("bert") is where `j` sits in the file.
BertConfig bert_config_from_hf(const nlohmann::json& j, const std::string& where,
                               const std::string& prefix = "");
nlohmann::json bert_config_to_hf(const BertConfig& c);

struct BertEmbeddingsImpl : torch::nn::Module {
  explicit BertEmbeddingsImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr},
      token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertEmbeddings);

struct BertLayerImpl : torch::nn::Module {
  explicit BertLayerImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
  BertConfig c;
  std::shared_ptr<torch::nn::Module> attention, attention_self, attention_output, intermediate,
      output;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_dense{nullptr},
      inter_dense{nullptr}, out_dense{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr}, out_norm{nullptr};
  torch::nn::Dropout dropout{nullptr}, attn_dropout{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertModelImpl : torch::nn::Module {
  explicit BertModelImpl(const BertConfig& c);
  // Last hidden states [B, T, H].
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
  BertConfig config;
  BertEmbeddings embeddings{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertModel);

class BertTaggerImpl : public TaggerImpl {
 public:
  BertTaggerImpl(const BertConfig& c, int columns, int classes);
  using TaggerImpl::forward;
  // Reads no word vectors: `words` is ignored.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask,
                        const torch::Tensor& words) override;
  nlohmann::json describe() const override;
  torch::Tensor word_embeddings() override { return bert->embeddings->word_embeddings->weight; }
  BertModel bert{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};

}  // namespace kdx::models
