// Masked-language-model pretraining (the pretrain stage): BERT's 15% of tokens as targets,
// 80% of them replaced by [MASK], 10% by a random token, 10% kept; optionally whole words;
// drawn anew every epoch (dynamic masking) from (seed, epoch, example), so every rank and a
// resumed run draw the same masks. Held-out score: masked-token accuracy.
#pragma once

#include <cstdint>
#include <vector>

#include "workers/data/document.h"
#include "workers/data/tokenizer.h"
#include "workers/models/bert_mlm.h"
#include "workers/runtime/execution.h"
#include "workers/training/task.h"

namespace kdx::training {

struct MlmOptions {
  double mask_prob = 0.15;
  bool whole_word = false;  // mask every piece of a chosen word
  uint64_t seed = 1;
  runtime::Execution exec;  // where the batches go, and autocast
};

struct MlmExample {
  std::vector<int> ids;             // [CLS] pieces... [SEP]
  std::vector<uint8_t> word_start;  // 1 where a word begins (not a "##" piece)
};

struct MlmData {
  std::vector<MlmExample> train, heldout;
  int vocab_size = 0, pad = 0, mask = 0;
  std::vector<uint8_t> special;  // [vocab_size]: never a target, never a random replacement
  long train_tokens() const;
};

// Windows of at most `window` tokens from `docs`; every `heldout_every`-th document (by
// position) is held out for the accuracy check (none when 0 or fewer documents).
MlmData make_mlm_data(const std::vector<data::Document>& docs, const data::Tokenizer& tok,
                      int window, int heldout_every);

struct MaskedExample {
  std::vector<int> input;      // ids with the replacements
  std::vector<int> positions;  // target positions in the example
  std::vector<int> targets;    // original ids there
};
// epoch < 0: the fixed draw used for the held-out score.
MaskedExample mask_example(const MlmData& data, const MlmExample& ex, const MlmOptions& o,
                           int epoch, size_t index);

class MlmTask : public Task {
 public:
  MlmTask(models::BertMlm model, const MlmData& data, MlmOptions options);
  size_t size() const override { return data_.train.size(); }
  long tokens(size_t example) const override {
    return static_cast<long>(data_.train[example].ids.size());
  }
  StepLoss loss(const std::vector<int>& global_batch, const std::vector<int>& mine, long step,
                int epoch) override;
  Evaluation evaluate() override;

 private:
  models::BertMlm model_;
  const MlmData& data_;
  MlmOptions options_;
};

}  // namespace kdx::training
