// Pretrained word vectors as a model input: one vector per wordpiece, its word's row of a
// table trimmed to the words a run's texts use (workers/data/word_table.h), with row 0 (no
// vector: an unknown word, [CLS], [SEP], padding) replaced by one learned vector. A frozen
// table is a parameter without gradient: counted in a model's total size, not as trainable.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

namespace kdx::models {

struct VectorsConfig {
  int rows = 0;  // table rows, row 0 included; 0 = the model reads no word vectors
  int dim = 0;
  bool freeze = true;
  // concat: [wordpiece embedding ; word vector] feeds the next layer (emb + dim features);
  // sum: the word vector, projected to the embedding's width, is added to it.
  std::string join = "concat";
  std::string file, format;  // where the vectors came from (recorded, never re-read)
  bool enabled() const { return rows > 0; }
};
VectorsConfig vectors_config_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json vectors_config_to_json(const VectorsConfig& c);

class WordVectorInputImpl : public torch::nn::Module {
 public:
  explicit WordVectorInputImpl(const VectorsConfig& c, int emb);
  // words [B, T] int64 rows -> [B, T, dim] (concat) or [B, T, emb] (sum).
  torch::Tensor forward(const torch::Tensor& words);
  // Copies pretrained rows [rows - 1, dim] into rows 1.. of the table.
  void load_rows(const float* data, int64_t count);
  int output_size() const { return config.join == "sum" ? emb_ : config.dim; }

  VectorsConfig config;
  torch::Tensor table, unknown;
  torch::nn::Linear proj{nullptr};  // sum only

 private:
  int emb_ = 0;
};
TORCH_MODULE(WordVectorInput);

}  // namespace kdx::models
