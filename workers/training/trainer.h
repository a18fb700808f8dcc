// The training loop shared by every stage: AdamW, linear warm-up and decay, gradient
// clipping, mixed precision with a dynamic loss scale for fp16, early stopping on the task's
// held-out score, checkpoints every N steps and on a stop signal, metrics.jsonl per epoch. What is
// learned comes from a Task (tagging or MLM pretraining). Data-parallel through a Reducer; only
// rank 0 writes files.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "workers/distributed/reducer.h"
#include "workers/runtime/execution.h"
#include "workers/training/task.h"
#include "workers/training/training_state.h"

namespace kdx::training {

// Set by the worker's signal handler (SIGTERM, SIGUSR1, SIGINT); the loop checkpoints and stops.
extern std::atomic<int> g_stop_signal;
// True while a training loop runs. Outside it a stop has nothing to save, so the handler exits
// at once (128 + the signal) instead of setting g_stop_signal for a loop that may never come.
extern std::atomic<bool> g_in_training_loop;

struct TrainerOptions {
  int epochs = 3;       // the cap; early stopping may end sooner
  int batch_size = 16;  // global, over all ranks
  double lr = 1e-3, weight_decay = 0.01, grad_clip = 1.0;
  int warmup_steps = 0;
  // After the warm-up: "linear" decay to 0 at the last step; "constant"; "plateau": constant,
  // times plateau_factor whenever the held-out score has not improved for more than
  // plateau_patience epochs, never below min_lr (PyTorch's ReduceLROnPlateau, mode max).
  std::string lr_schedule = "linear";
  double plateau_factor = 0.5, min_lr = 0;
  int plateau_patience = 0;
  // Epochs without a held-out gain before stopping; 0 = run every epoch. A run whose score
  // is still 0 stops after twice as many (at least 6) and says so (TrainingState::stalled).
  int patience = 0;
  // The examples of one epoch, in training order; empty = every example, shuffled by
  // (seed, epoch) (epoch_order). Must depend on (seed, epoch) only, so a resume sees the same.
  std::function<std::vector<int>(int epoch)> order;
  // Parameters kept fixed while the completed epochs are fewer than freeze_epochs (the
  // paper's students freeze the teacher's embedding table for their first 20 epochs).
  std::vector<torch::Tensor> frozen;
  int freeze_epochs = 0;
  int checkpoint_every = 200;
  uint64_t seed = 1;
  std::string checkpoint_dir;  // empty = no checkpoints
  std::string best_weights;    // where the best held-out weights go (empty = none)
  std::string metrics_path;    // metrics.jsonl (empty = none)
  // progress.json, rewritten every few seconds while training (empty = none): where `kdx
  // status` reads a running run's epoch, step, speed and ETA without touching the registry.
  std::string progress_path;
  std::string stage;  // for progress.json
  int max_steps = 0;  // stop after this many optimizer steps (tests); 0 = no limit
  bool quiet = false;
  // Device and precision: the model is moved there before the optimizer is built; the
  // task's forward runs under its autocast; fp16 scales the loss (state in TrainingState).
  runtime::Execution exec;
};

// Thrown after the checkpoint is written when a stop signal arrived.
struct StopRequested : std::runtime_error {
  explicit StopRequested(int sig)
      : std::runtime_error("stopped by signal " + std::to_string(sig)), signal(sig) {}
  int signal;
};

class Trainer {
 public:
  Trainer(std::shared_ptr<torch::nn::Module> model, Task& task, TrainerOptions options,
          distributed::Reducer& reducer);
  // Resumes from the checkpoint directory when it holds one. Throws kdx::Error on a NaN loss
  // (the last good checkpoint is kept) and StopRequested on a signal. With fp16 loss scaling
  // an inf/NaN step is skipped and the scale lowered instead.
  TrainingState run();
  double tokens_per_second() const { return tokens_per_s_; }
  // Mean wall time per step spent summing gradients over ranks (0 for one rank).
  double allreduce_ms_per_step() const {
    return sync_steps_ ? sync_seconds_ * 1e3 / sync_steps_ : 0;
  }

 private:
  // Returns the global loss and fills `terms` with the global loss parts; sets `stop` when
  // any rank has seen a stop signal, so that all ranks stop after the same step.
  double train_step(const std::vector<int>& global_batch, TrainingState& s,
                    std::vector<std::pair<std::string, double>>& terms, bool& stop, bool& skipped);
  double lr_at(long step, double lr_scale) const;
  int zero_patience() const { return std::max(6, 2 * opt_.patience); }
  void set_frozen(int epoch);
  void write_checkpoint(const TrainingState& s);
  void write_progress(const TrainingState& s, double tokens_per_s, double eta_s, double loss);

  std::shared_ptr<torch::nn::Module> model_;
  Task& task_;
  TrainerOptions opt_;
  distributed::Reducer& reducer_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  long total_steps_ = 0;
  double tokens_per_s_ = 0;
  double sync_seconds_ = 0;
  long sync_steps_ = 0;
  size_t bucket_bytes_ = 8 << 20;
  long epoch_size_ = 0;
};

// The examples of epoch `epoch` in training order: a permutation seeded by (seed, epoch).
std::vector<int> epoch_order(size_t examples, uint64_t seed, int epoch);

}  // namespace kdx::training
