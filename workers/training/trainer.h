// The training loop shared by teacher and students: AdamW, linear warm-up and decay,
// gradient clipping, CE on gold tags plus an optional distillation term against cached
// teacher logits, dev-set early stopping, checkpoints every N steps and on a stop signal,
// metrics.jsonl per epoch. Data-parallel through a Reducer; only rank 0 writes files.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "workers/data/encode.h"
#include "workers/distributed/reducer.h"
#include "workers/models/tagger.h"
#include "workers/training/logits_cache.h"
#include "workers/training/training_state.h"

namespace kdx::training {

// Set by the worker's signal handler (SIGTERM, SIGUSR1, SIGINT); the loop checkpoints and stops.
extern std::atomic<int> g_stop_signal;

struct TrainerOptions {
  int epochs = 3;
  int batch_size = 16;  // global, over all ranks
  double lr = 1e-3, weight_decay = 0.01, grad_clip = 1.0;
  int warmup_steps = 0;
  int patience = 0;  // 0 = no early stopping
  int checkpoint_every = 200;
  uint64_t seed = 1;
  double ce_weight = 1.0, kd_weight = 0.0, temperature = 1.0;
  std::string kd_loss = "mse";  // mse | kl
  std::string checkpoint_dir;   // empty = no checkpoints
  std::string best_weights;     // where the best dev-F1 weights go (empty = none)
  std::string metrics_path;     // metrics.jsonl (empty = none)
  int max_steps = 0;            // stop after this many optimizer steps (tests); 0 = no limit
  bool quiet = false;
};

struct TrainData {
  const data::EncodedDataset* train = nullptr;
  const data::EncodedDataset* dev = nullptr;  // may be empty
  const std::vector<data::Document>* dev_gold = nullptr;
  const LogitsCache* teacher = nullptr;  // required when kd_weight != 0
  int pad_id = 0;
  std::string format;
  std::vector<std::string> types;
};

// Thrown after the checkpoint is written when a stop signal arrived.
struct StopRequested : std::runtime_error {
  explicit StopRequested(int sig)
      : std::runtime_error("stopped by signal " + std::to_string(sig)), signal(sig) {}
  int signal;
};

class Trainer {
 public:
  Trainer(models::Tagger tagger, TrainerOptions options, TrainData data,
          distributed::Reducer& reducer);
  // Resumes from the checkpoint directory when it holds one. Throws kdx::Error on a NaN loss
  // (the last good checkpoint is kept) and StopRequested on a signal.
  TrainingState run();
  double tokens_per_second() const { return tokens_per_s_; }
  // Mean wall time per step spent summing gradients over ranks (0 for one rank).
  double allreduce_ms_per_step() const {
    return sync_steps_ ? sync_seconds_ * 1e3 / sync_steps_ : 0;
  }

 private:
  // Returns the global loss; sets `stop` when any rank has seen a stop signal, so that all
  // ranks stop after the same step.
  double train_step(const std::vector<int>& global_batch, long step, bool& stop);
  double lr_at(long step) const;
  double evaluate_dev();
  void write_checkpoint(const TrainingState& s);

  models::Tagger tagger_;
  TrainerOptions opt_;
  TrainData data_;
  distributed::Reducer& reducer_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  long total_steps_ = 0;
  double tokens_per_s_ = 0;
  double sync_seconds_ = 0;
  long sync_steps_ = 0;
  size_t bucket_bytes_ = 8 << 20;
};

// The examples of epoch `epoch` in training order: a permutation seeded by (seed, epoch).
std::vector<int> epoch_order(size_t examples, uint64_t seed, int epoch);

}  // namespace kdx::training
