#include "orchestrator/result_schema.h"

#include <sys/stat.h>

#include <cmath>
#include <map>
#include <utility>

#include "common/atomic_file.h"
#include "common/json_io.h"

namespace kdx {
namespace {

// Metrics the report computes with, and their ranges.
const std::map<std::string, std::pair<double, double>>& known_metrics() {
  static const std::map<std::string, std::pair<double, double>> m = {
      {"f1", {0, 1}},
      {"precision", {0, 1}},
      {"recall", {0, 1}},
      {"macro_f1", {0, 1}},
      {"macro_f1_few_shot", {0, 1}},
      {"best_dev_f1", {-1, 1}},
      {"params", {0, 1e13}},
      {"params_trainable", {0, 1e13}},
      {"params_no_embedding", {0, 1e13}},
      {"size_mb", {0, 1e9}},
      {"latency_b1_ms", {0, 1e9}},
      {"latency_b32_ms", {0, 1e9}},
      {"mlm_accuracy", {-1, 1}},
      {"gpu_hours", {0, 1e7}},
      {"peak_device_memory_mb", {0, 1e9}}};
  return m;
}

}  // namespace

std::string check_result(const nlohmann::json& r, const std::string& run_id) {
  if (!r.is_object()) return "not a JSON object";
  if (!r.contains("status") || !r["status"].is_string()) return "status: must be a string (\"ok\")";
  if (r["status"] != "ok") return "status: " + r["status"].get<std::string>();
  if (r.contains("run") && (!r["run"].is_string() || r["run"] != run_id))
    return "run: " + r["run"].dump() + " is not this run (" + run_id + ")";
  if (r.contains("warnings")) {
    if (!r["warnings"].is_array()) return "warnings: must be a list of strings";
    for (auto& w : r["warnings"])
      if (!w.is_string()) return "warnings: must be a list of strings";
  }
  if (r.contains("files") && !r["files"].is_object()) return "files: must be an object";
  if (!r.contains("metrics")) return {};
  if (!r["metrics"].is_object()) return "metrics: must be an object";
  for (auto& [k, v] : r["metrics"].items()) {
    auto known = known_metrics().find(k);
    if (v.is_number()) {
      double x = v.get<double>();
      if (!std::isfinite(x)) return "metrics." + k + ": must be a finite number";
      if (known != known_metrics().end() && (x < known->second.first || x > known->second.second))
        return "metrics." + k + ": " + v.dump() + " is out of range";
    } else if (known != known_metrics().end()) {
      return "metrics." + k + ": must be a number, got " + v.dump();
    } else if (!v.is_string() && !v.is_null() && !v.is_boolean()) {
      return "metrics." + k + ": must be a number, string or null";
    }
  }
  return {};
}

nlohmann::json read_result(const std::string& run_dir, const std::string& run_id,
                           std::string& error) {
  std::string path = run_dir + "/result.json";
  struct stat st;
  if (::lstat(run_dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    error = run_dir + ": is a symbolic link; its result is not recorded";
    return nullptr;
  }
  if (!file_exists(path)) {
    error = path + ": missing";
    return nullptr;
  }
  std::string parse_error;
  auto r = parse_json(read_file(path), &parse_error);
  if (r.is_discarded()) {
    error = path + ": " + parse_error;
    return nullptr;
  }
  auto bad = check_result(r, run_id);
  if (!bad.empty()) {
    error = path + ": " + bad;
    return nullptr;
  }
  return r;
}

}  // namespace kdx
