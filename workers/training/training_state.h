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
  // 3: adds the loss scaler. A version-2 state (written before mixed precision) resumes
  // with the scaler's initial state.
  static constexpr int kVersion = 3;
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

  nlohmann::json to_json() const;
  static TrainingState from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace kdx::training
