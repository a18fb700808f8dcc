// Tagging: a teacher or a student learns NER tags (CE) and, given a teacher logits cache,
// to match the teacher (the distillation term of the objective). Held-out score: dev F1.
#pragma once

#include <string>
#include <vector>

#include "workers/data/encode.h"
#include "workers/decoding/decode.h"
#include "workers/models/tagger.h"
#include "workers/runtime/execution.h"
#include "workers/training/logits_cache.h"
#include "workers/training/objective.h"
#include "workers/training/task.h"

namespace kdx::training {

struct TrainData {
  const data::EncodedDataset* train = nullptr;  // labelled examples, then unlabelled ones
  const data::EncodedDataset* dev = nullptr;    // may be empty
  const std::vector<data::Document>* dev_gold = nullptr;
  const LogitsCache* teacher = nullptr;  // required when kd_weight != 0; indexed like train
  int pad_id = 0;
  std::string format;
  std::vector<std::string> types;
  decoding::Decoder decoder = decoding::Decoder::Greedy;  // of the dev evaluation
};

class TaggingTask : public Task {
 public:
  TaggingTask(models::Tagger tagger, TrainData data, Objective objective,
              runtime::Execution exec = {});
  size_t size() const override { return data_.train->examples.size(); }
  long tokens(size_t example) const override;
  StepLoss loss(const std::vector<int>& global_batch, const std::vector<int>& mine, long step,
                int epoch) override;
  Evaluation evaluate() override;

 private:
  models::Tagger tagger_;
  TrainData data_;
  Objective objective_;
  runtime::Execution exec_;
};

}  // namespace kdx::training
