#include "orchestrator/plan_view.h"

#include <map>

#include "common/params.h"
#include "common/strings.h"
#include "orchestrator/table.h"

namespace kdx {

std::string render_plan(const Plan& plan, const std::string& data_root) {
  std::string out =
      "experiment " + plan.experiment + " (" + plan.spec_file + "), data root " + data_root + "\n";
  std::map<std::string, std::map<std::string, int>> per_dataset;
  for (auto& r : plan.runs) ++per_dataset[r.dataset][r.stage];
  for (auto& [ds, stages] : per_dataset) {
    out += "  " + (ds.empty() ? std::string("(all datasets)") : ds) + ":";
    for (auto& stage : stage_names())
      if (stages.count(stage)) out += " " + std::to_string(stages[stage]) + " " + stage;
    out += "\n";
  }
  Table t;
  t.header = {"RUN",    "STAGE", "DATASET", "ARCH",       "HIDDEN",
              "LAYERS", "LOSS",  "SEED",    "DEPENDS ON", "RESOURCES"};
  for (auto& r : plan.runs) {
    auto& p = r.config["params"];
    auto get = [&](const char* k) {
      return p.contains(k) ? (p[k].is_string() ? p[k].get<std::string>() : p[k].dump()) : "";
    };
    std::string loss;
    if (p.contains("loss") && p["loss"].is_object()) {
      auto& l = p["loss"];
      loss = "ce=" + l.value("ce_weight", nlohmann::json(1)).dump();
      if (l.contains("dice_weight")) loss += " dice=" + l["dice_weight"].dump();
      if (l.contains("kd_weight")) loss += " kd=" + l["kd_weight"].dump();
      // KL, MSE and self-training (hard) students differ only here: show which.
      if (l.value("kd_weight", nlohmann::json(0)) != 0) {
        if (l.contains("kd_loss") && l["kd_loss"].is_string())
          loss += " " + l["kd_loss"].get<std::string>();
        if (l.contains("combine") && l["combine"].is_string())
          loss += " " + l["combine"].get<std::string>();
      }
    }
    std::string arch = get("arch");
    if (p.contains("init_from")) arch = "bert(init)";
    auto& res = r.resources;
    std::string resources = std::to_string(res.nodes) + "n " + std::to_string(res.cpus) + "c " +
                            (res.gpus_per_node ? std::to_string(res.gpus_per_node) + "g " : "") +
                            res.mem + " " + res.time +
                            (res.partition.empty() ? "" : " " + res.partition);
    t.rows.push_back({r.id, r.stage, r.dataset, arch, get("hidden"), get("layers"), loss,
                      get("seed"), r.deps.empty() ? "-" : join(r.deps, ","), resources});
  }
  out += render_text(t);
  return out;
}

}  // namespace kdx
