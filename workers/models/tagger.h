// A token tagger: token ids and attention mask [B, T] in, logits [B, T, columns * classes]
// out. Two real implementations: the BERT teacher and the recurrent students.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace kdx::models {

class TaggerImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask) = 0;
  // What a deployed model runs at inference: by default forward() without autograd;
  // students override it with their hand-written recurrent loops.
  virtual torch::Tensor infer(const torch::Tensor& ids, const torch::Tensor& mask) {
    torch::NoGradGuard g;
    return forward(ids, mask);
  }
  // Architecture description, enough to rebuild the module (model.json).
  virtual nlohmann::json describe() const = 0;
  // Output layout of the head.
  int columns = 1, classes = 1;
};

using Tagger = std::shared_ptr<TaggerImpl>;

// Parameter count and serialized size (float32) of a module.
int64_t parameter_count(torch::nn::Module& m);

}  // namespace kdx::models
