#include "orchestrator/status_view.h"

#include <cstdio>
#include <map>

#include "common/atomic_file.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "orchestrator/local_executor.h"
#include "orchestrator/run_logs.h"
#include "orchestrator/run_state.h"
#include "orchestrator/table.h"

namespace kdx {
namespace {

std::string num(const nlohmann::json& j) {
  if (j.is_null()) return "";
  if (j.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", j.get<double>());
    return buf;
  }
  return j.is_string() ? j.get<std::string>() : j.dump();
}

}  // namespace

std::string format_progress_cell(const nlohmann::json& p) {
  if (!p.is_object()) return "";
  auto i = [&](const char* k) {
    return p.contains(k) && p[k].is_number() ? p[k].get<double>() : -1;
  };
  std::string out = "epoch " + std::to_string(static_cast<long>(i("epoch"))) + "/" +
                    std::to_string(static_cast<long>(i("epochs"))) + ", step " +
                    std::to_string(static_cast<long>(i("step"))) + "/" +
                    std::to_string(static_cast<long>(i("total_steps")));
  double tps = i("tokens_per_s");
  if (tps >= 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf,
                  tps >= 1e4   ? "%.0fk"
                  : tps >= 1e3 ? "%.1fk"
                               : "%.0f",
                  tps >= 1e3 ? tps / 1e3 : tps);
    out += ", " + std::string(buf) + " tok/s";
  }
  if (i("eta_s") > 0) out += ", ETA " + format_duration(i("eta_s"));
  // The epoch-cap ETA: early stopping usually ends a run sooner.
  return out;
}

std::vector<StatusRow> status_rows(Registry& reg, const std::vector<RunRecord>& runs) {
  std::vector<StatusRow> out;
  for (auto& r : runs) {
    StatusRow row;
    row.id = r.id;
    row.experiment = r.experiment;
    row.stage = r.stage;
    row.dataset = r.dataset;
    auto& p = r.config["params"];
    row.arch = p.value("arch", std::string());
    if (p.contains("init_from")) row.arch = "bert(init)";
    if (p.contains("hidden")) row.hidden = num(p["hidden"]);
    if (p.contains("loss")) {
      row.loss = "ce=" + num(p["loss"]["ce_weight"]) + " kd=" + num(p["loss"]["kd_weight"]);
      if (p["loss"].value("kd_weight", 0.0) != 0 && p["loss"].contains("kd_loss"))
        row.loss += " " + num(p["loss"]["kd_loss"]);
      if (p["loss"].value("kd_weight", 0.0) != 0 && p["loss"].contains("combine"))
        row.loss += " " + num(p["loss"]["combine"]);
    }
    row.state = r.state;
    row.reason = r.reason;
    auto a = reg.last_attempt(r.id);
    if (a) {
      row.attempt = a->number;
      if (a->start_time > 0)
        row.elapsed_s = (a->end_time > 0 ? a->end_time : now_seconds()) - a->start_time;
    }
    auto m = reg.metrics(r.id);
    if (m.count("f1") && m["f1"].is_number()) row.f1 = m["f1"].get<double>();
    // A running worker rewrites progress.json every few seconds (the registry is kdx's alone).
    if (r.state == state::kRunning && file_exists(r.run_dir + "/progress.json")) {
      auto pj = parse_json(read_input(r.run_dir + "/progress.json", InputKind::Record));
      if (pj.is_object()) row.progress = pj;
    }
    out.push_back(row);
  }
  return out;
}

std::string render_status(const std::vector<StatusRow>& rows) {
  Table t;
  t.header = {"RUN",   "STAGE", "DATASET", "ARCH", "HIDDEN",  "LOSS",
              "STATE", "TRY",   "ELAPSED", "F1",   "PROGRESS"};
  t.right_align = {false, false, false, false, true, false, false, true, true, true, false};
  std::map<std::string, int> counts;
  for (auto& r : rows) {
    char f1[16] = "";
    if (r.f1 >= 0) std::snprintf(f1, sizeof f1, "%.4f", r.f1);
    t.rows.push_back({r.id, r.stage, r.dataset, r.arch, r.hidden, r.loss, r.state,
                      r.attempt ? std::to_string(r.attempt) : "-",
                      r.elapsed_s >= 0 ? format_duration(r.elapsed_s) : "-", f1,
                      format_progress_cell(r.progress)});
    ++counts[r.state];
  }
  std::string out = render_text(t);
  std::vector<std::string> parts;
  for (auto& [s, n] : counts) parts.push_back(std::to_string(n) + " " + s);
  out += std::to_string(rows.size()) + " runs: " + join(parts, ", ") + "\n";
  for (auto& r : rows)
    if (!r.reason.empty() && !state::is_active(r.state) && r.state != state::kCompleted)
      out += r.id + " " + r.state + ": " + r.reason + "\n";
  return out;
}

nlohmann::json status_json(const std::vector<StatusRow>& rows) {
  auto out = nlohmann::json::array();
  for (auto& r : rows) {
    out.push_back({{"id", r.id},
                   {"experiment", r.experiment},
                   {"stage", r.stage},
                   {"dataset", r.dataset},
                   {"arch", r.arch},
                   {"hidden", r.hidden},
                   {"loss", r.loss},
                   {"state", r.state},
                   {"reason", r.reason},
                   {"attempt", r.attempt},
                   {"elapsed_s", r.elapsed_s >= 0 ? nlohmann::json(r.elapsed_s) : nlohmann::json()},
                   {"f1", r.f1 >= 0 ? nlohmann::json(r.f1) : nlohmann::json()},
                   {"progress", r.progress}});
  }
  return out;
}

nlohmann::json show_json(Registry& reg, const RunRecord& r) {
  auto attempts = nlohmann::json::array();
  for (auto& a : reg.attempts(r.id)) {
    attempts.push_back(
        {{"number", a.number},
         {"executor", a.executor},
         {"job_id", a.job_id},
         {"pid", a.pid},
         {"host", a.host},
         {"state", a.state},
         {"raw_state", a.raw_state},
         {"reason", a.reason},
         {"exit_code", a.exit_code ? nlohmann::json(*a.exit_code) : nlohmann::json()},
         {"start_time", a.start_time},
         {"end_time", a.end_time},
         {"elapsed_s", a.elapsed_s},
         {"log", attempt_log_path(r, a)}});
  }
  nlohmann::json metrics = nlohmann::json::object();
  for (auto& [k, v] : reg.metrics(r.id)) metrics[k] = v;
  return {{"id", r.id},           {"experiment", r.experiment},
          {"stage", r.stage},     {"dataset", r.dataset},
          {"state", r.state},     {"raw_state", r.raw_state},
          {"reason", r.reason},   {"deps", r.deps},
          {"run_dir", r.run_dir}, {"config", r.config},
          {"attempts", attempts}, {"metrics", metrics}};
}

std::string render_show(Registry& reg, const RunRecord& r) {
  auto j = show_json(reg, r);
  std::string out;
  out += "run        " + r.id + "\n";
  out += "experiment " + r.experiment + "\n";
  out += "stage      " + r.stage + " (" + r.dataset + ")\n";
  out += "state      " + r.state + (r.raw_state.empty() ? "" : " [" + r.raw_state + "]") +
         (r.reason.empty() ? "" : ": " + r.reason) + "\n";
  out += "run dir    " + r.run_dir + "\n";
  out += "depends on " + (r.deps.empty() ? std::string("-") : join(r.deps, ", ")) + "\n";
  out += "config\n" + r.config.dump(2) + "\n";
  out += "attempts\n";
  for (auto& a : j["attempts"]) {
    out += "  #" + a["number"].dump() + " " + a["executor"].get<std::string>() + " " +
           a["state"].get<std::string>() + " [" + a["raw_state"].get<std::string>() + "]";
    if (!a["job_id"].get<std::string>().empty()) out += " job " + a["job_id"].get<std::string>();
    if (a["pid"].get<long>() > 0) out += " pid " + a["pid"].dump();
    out += " " + format_duration(a["elapsed_s"].get<double>());
    if (!a["reason"].get<std::string>().empty()) out += " - " + a["reason"].get<std::string>();
    out += "\n    log    " + a["log"].get<std::string>() + "   (kdx logs " + r.id + " --attempt " +
           a["number"].dump() + ")\n";
  }
  out += "metrics\n";
  if (j["metrics"].empty()) out += "  (none yet)\n";
  for (auto& [k, v] : j["metrics"].items()) out += "  " + k + " = " + v.dump() + "\n";
  return out;
}

}  // namespace kdx
