#include "workers/training/training_state.h"

#include "common/error.h"

namespace kdx::training {

nlohmann::json TrainingState::to_json() const {
  return {{"version", kVersion},
          {"epoch", epoch},
          {"batch_in_epoch", batch_in_epoch},
          {"step", step},
          {"tokens", tokens},
          {"elapsed_s", elapsed_s},
          {"best_score", best_score},
          {"best_step", best_step},
          {"best_epoch", best_epoch},
          {"epochs_without_improvement", epochs_without_improvement},
          {"last_loss", last_loss},
          {"finished", finished}};
}

TrainingState TrainingState::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("version", 0) != kVersion)
    throw Error(where + ": not a training state of version " + std::to_string(kVersion));
  TrainingState s;
  s.epoch = j.at("epoch");
  s.batch_in_epoch = j.at("batch_in_epoch");
  s.step = j.at("step");
  s.tokens = j.at("tokens");
  s.elapsed_s = j.at("elapsed_s");
  s.best_score = j.at("best_score");
  s.best_step = j.at("best_step");
  s.best_epoch = j.at("best_epoch");
  s.epochs_without_improvement = j.at("epochs_without_improvement");
  s.last_loss = j.at("last_loss");
  s.finished = j.at("finished");
  return s;
}

}  // namespace kdx::training
