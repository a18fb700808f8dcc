#include "workers/training/training_state.h"

#include <cmath>

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
  // Every counter typed and in range: a damaged state must stop the resume, not index past
  // an epoch's batches.
  auto integer = [&](const char* k, int64_t lo, int64_t hi) {
    if (!j.contains(k) || !j[k].is_number_integer() || j[k].get<int64_t>() < lo ||
        j[k].get<int64_t>() > hi)
      throw Error(where + ": field \"" + std::string(k) + "\" must be an integer between " +
                  std::to_string(lo) + " and " + std::to_string(hi));
    return j[k].get<int64_t>();
  };
  auto number = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_number() || !std::isfinite(j[k].get<double>()))
      throw Error(where + ": field \"" + std::string(k) + "\" must be a finite number");
    return j[k].get<double>();
  };
  const int64_t big = int64_t{1} << 50;
  TrainingState s;
  s.epoch = static_cast<int>(integer("epoch", 0, 1000000));
  s.batch_in_epoch = static_cast<int>(integer("batch_in_epoch", 0, 1000000000));
  s.step = integer("step", 0, big);
  s.tokens = integer("tokens", 0, big);
  s.elapsed_s = number("elapsed_s");
  s.best_score = number("best_score");
  s.best_step = integer("best_step", -1, big);
  s.best_epoch = static_cast<int>(integer("best_epoch", 0, 1000000));
  s.epochs_without_improvement =
      static_cast<int>(integer("epochs_without_improvement", 0, 1000000));
  s.last_loss =
      j.contains("last_loss") && j["last_loss"].is_number() ? j["last_loss"].get<double>() : 0.0;
  if (!j.contains("finished") || !j["finished"].is_boolean())
    throw Error(where + ": field \"finished\" must be true or false");
  s.finished = j["finished"].get<bool>();
  return s;
}

}  // namespace kdx::training
