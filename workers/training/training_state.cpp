#include "workers/training/training_state.h"

#include <algorithm>
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
          {"finished", finished},
          {"loss_scaler",
           {{"scale", scaler.scale},
            {"good_steps", scaler.good_steps},
            {"skipped_steps", scaler.skipped_steps}}},
          {"lr_scale", lr_scale},
          {"plateau_best", plateau_best},
          {"plateau_bad_epochs", plateau_bad_epochs},
          {"stalled", stalled}};
}

TrainingState TrainingState::from_json(const nlohmann::json& j, const std::string& where) {
  const int version = j.is_object() && j.contains("version") && j["version"].is_number_integer()
                          ? j["version"].get<int>()
                          : 0;
  if (version < 2 || version > kVersion)
    throw Error(where + ": not a training state of version 2 to " + std::to_string(kVersion));
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
  if (version >= 3) {
    if (!j.contains("loss_scaler") || !j["loss_scaler"].is_object())
      throw Error(where + ": field \"loss_scaler\" must be an object");
    auto& ls = j["loss_scaler"];
    auto field = [&](const char* k) {
      if (!ls.contains(k) || !ls[k].is_number() || !std::isfinite(ls[k].get<double>()) ||
          ls[k].get<double>() < 0)
        throw Error(where + ": field \"loss_scaler." + std::string(k) +
                    "\" must be a finite number >= 0");
      return ls[k].get<double>();
    };
    s.scaler.scale = field("scale");
    if (s.scaler.scale <= 0) throw Error(where + ": field \"loss_scaler.scale\" must be > 0");
    s.scaler.good_steps = static_cast<int>(std::min(field("good_steps"), 1e9));
    s.scaler.skipped_steps = static_cast<long>(std::min(field("skipped_steps"), 1e15));
  }
  if (version >= 4) {
    s.lr_scale = number("lr_scale");
    if (s.lr_scale <= 0 || s.lr_scale > 1)
      throw Error(where + ": field \"lr_scale\" must be in (0, 1]");
    s.plateau_best = number("plateau_best");
    s.plateau_bad_epochs = static_cast<int>(integer("plateau_bad_epochs", 0, 1000000));
    if (!j.contains("stalled") || !j["stalled"].is_boolean())
      throw Error(where + ": field \"stalled\" must be true or false");
    s.stalled = j["stalled"].get<bool>();
  }
  return s;
}

}  // namespace kdx::training
