// A teacher ensemble as one tagger: its members' outputs combined token by token exactly as
// the logits stage caches them, so that the ensemble is scored by the same predict() and
// decoders as any single model (the report's "teacher ensemble" row).
#pragma once

#include <string>
#include <vector>

#include "workers/models/tagger.h"

namespace kdx::models {

enum class Combine { MeanLogits, MeanProbs };

// "mean_logits" | "mean_probs"; anything else throws, naming `where`.
Combine combine_of(const std::string& name, const std::string& where);
const char* combine_name(Combine c);

// The members' outputs [B, T, columns * classes], combined: their mean (MeanLogits), or the
// logarithm of the mean of their per-column tag probabilities (MeanProbs: logits whose softmax
// is that mean). One output is returned as it is.
torch::Tensor combine_outputs(const std::vector<torch::Tensor>& outputs, Combine rule, int columns,
                              int classes);

class EnsembleTaggerImpl : public TaggerImpl {
 public:
  // The members share tokenizer, head layout and word rows (the caller checks the files).
  EnsembleTaggerImpl(std::vector<Tagger> members, Combine rule);
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask,
                        const torch::Tensor& words) override;
  torch::Tensor infer(const torch::Tensor& ids, const torch::Tensor& mask,
                      const torch::Tensor& words) override;
  using TaggerImpl::forward;
  using TaggerImpl::infer;
  int word_rows() const override { return members_.front()->word_rows(); }
  nlohmann::json describe() const override;

 private:
  std::vector<Tagger> members_;
  Combine rule_;
};

}  // namespace kdx::models
