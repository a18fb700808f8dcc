// What `kdx status` and `kdx show` print: one row per run, or one run in full.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orchestrator/registry.h"

namespace kdx {

struct StatusRow {
  std::string id, experiment, stage, dataset, arch, hidden, loss, state, reason;
  int attempt = 0;
  double elapsed_s = -1;
  double f1 = -1;
  nlohmann::json progress;  // a running run's progress.json, else null
};

// "epoch 3/30, step 360/3510, 8.6k tok/s, ETA 6m12s" from a progress.json.
std::string format_progress_cell(const nlohmann::json& progress);

std::vector<StatusRow> status_rows(Registry& reg, const std::vector<RunRecord>& runs);
std::string render_status(const std::vector<StatusRow>& rows);
nlohmann::json status_json(const std::vector<StatusRow>& rows);

std::string render_show(Registry& reg, const RunRecord& run);
nlohmann::json show_json(Registry& reg, const RunRecord& run);

}  // namespace kdx
