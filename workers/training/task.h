// What the shared training loop (Trainer) optimises. Two tasks exist: tagging (a teacher or
// a student on NER tags, with optional distillation) and masked-language-model pretraining.
// The loop owns everything else: order, optimiser, schedule, ranks, checkpoints, progress.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdx::training {

struct StepLoss {
  torch::Tensor total;  // this rank's share of the global batch's loss; undefined if none
  // Named parts (this rank's share), averaged per epoch into metrics.jsonl. The same names,
  // in the same order, on every rank and every step.
  std::vector<std::pair<std::string, double>> terms;
  // When defined: the terms' values as a 1-D tensor on the run's device, in `terms` order;
  // the trainer reads it together with the loss (one device-to-host transfer per step).
  torch::Tensor term_values;
};

struct Evaluation {
  double score = -1;  // higher is better; < 0 = no held-out data (no early stopping)
  nlohmann::json fields = nlohmann::json::object();  // e.g. {"dev_f1": 0.41}
};

class Task {
 public:
  virtual ~Task() = default;
  virtual size_t size() const = 0;                // training examples
  virtual long tokens(size_t example) const = 0;  // for tokens/s
  // Loss of `mine`, this rank's part of `global_batch`, normalised over the whole global
  // batch (every rank knows it), so gradients summed over ranks are one process's gradient.
  virtual StepLoss loss(const std::vector<int>& global_batch, const std::vector<int>& mine,
                        long step, int epoch) = 0;
  virtual Evaluation evaluate() = 0;  // after each epoch, on held-out data
};

}  // namespace kdx::training
