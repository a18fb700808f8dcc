// TrainingState: every resumable counter of a run, saved whole with each checkpoint
// (marian-style). Randomness is derived from (seed, epoch) for the data order and
// (seed, step) for dropout, so resuming needs no generator state: reseed and skip.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace kdx::training {

// fp16 training's dynamic loss scale (workers/runtime/loss_scaler.h); unused otherwise.
struct LossScalerState {
  double scale = 65536.0;
  int good_steps = 0;      // clean steps since the scale last changed
  long skipped_steps = 0;  // steps skipped for an inf or NaN gradient
};

struct TrainingState {
  // 3: adds the loss scaler; 4: the learning-rate plateau schedule and the stalled flag. An
  // older state resumes with those parts' initial values.
  static constexpr int kVersion = 4;
  int epoch = 0;           // current epoch (0-based)
  int batch_in_epoch = 0;  // batches of this epoch already done
  long step = 0;           // optimizer steps done
  long tokens = 0;         // training tokens seen
  double elapsed_s = 0;    // training time before this process
  double best_score = -1;  // best held-out score (dev F1, MLM accuracy); -1 = none
  long best_step = -1;
  int best_epoch = 0;  // 1-based epoch whose weights are kept; 0 = none yet
  int epochs_without_improvement = 0;
  double last_loss = 0;
  bool finished = false;
  LossScalerState scaler;
  // lr_schedule "plateau": the factor on the peak learning rate, the best held-out score the
  // schedule has seen and the epochs since it improved.
  double lr_scale = 1.0;
  double plateau_best = -1;
  int plateau_bad_epochs = 0;
  // The held-out score never left 0 and early stopping ended the run (a warning in result.json).
  bool stalled = false;

  nlohmann::json to_json() const;
  static TrainingState from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace kdx::training
