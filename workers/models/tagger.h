// A token tagger: token ids and attention mask [B, T] (and, for a model that reads pretrained
// word vectors, each token's word row [B, T]) in, logits [B, T, columns * classes] out. Two
// real implementations: the BERT teacher and the recurrent taggers (students, or teachers).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace kdx::models {

class TaggerImpl : public torch::nn::Module {
 public:
  // `words` is undefined for a model without word vectors (word_rows() == 0).
  virtual torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask,
                                const torch::Tensor& words) = 0;
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask) {
    return forward(ids, mask, torch::Tensor());
  }
  // What a deployed model runs at inference: by default forward() without autograd;
  // students override it with their hand-written recurrent loops.
  virtual torch::Tensor infer(const torch::Tensor& ids, const torch::Tensor& mask,
                              const torch::Tensor& words) {
    torch::NoGradGuard g;
    return forward(ids, mask, words);
  }
  torch::Tensor infer(const torch::Tensor& ids, const torch::Tensor& mask) {
    return infer(ids, mask, torch::Tensor());
  }
  // Rows of its pretrained word-vector table (row 0, the unknown word, included); 0: it reads
  // none, and its inputs carry no word rows.
  virtual int word_rows() const { return 0; }
  // Architecture description, enough to rebuild the module (model.json).
  virtual nlohmann::json describe() const = 0;
  // The word-embedding table (one row per wordpiece), which parameter counts report apart:
  // the paper compares models without it. Position and segment embeddings are not in it.
  // Undefined: none.
  virtual torch::Tensor word_embeddings() { return {}; }
  // Output layout of the head.
  int columns = 1, classes = 1;
};

using Tagger = std::shared_ptr<TaggerImpl>;

// Parameter count and serialized size (float32) of a module.
int64_t parameter_count(torch::nn::Module& m);

// A tagger's parameters, counted three ways for result.json (teacher and student alike).
struct ParamCounts {
  int64_t total = 0;      // every parameter (result.json "params")
  int64_t trainable = 0;  // those with requires_grad now ("params_trainable")
  int64_t embedding = 0;  // the word-embedding table
  int64_t vectors = 0;    // the pretrained word-vector table (trainable or frozen)
  // "params_no_embedding": without the word tables (wordpiece embedding and word vectors), as
  // the paper counts a model.
  int64_t no_embedding() const { return total - embedding - vectors; }
};
ParamCounts count_parameters(TaggerImpl& tagger);

}  // namespace kdx::models
