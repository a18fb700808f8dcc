#include "orchestrator/result_schema.h"

#include <sys/stat.h>

#include <cmath>
#include <map>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
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

// Bounds on what a result may carry into the registry (each metric is a row there, each
// string is stored whole): a worker's real results are a few kB.
constexpr size_t kMaxMetrics = 1000;
constexpr size_t kMaxKey = 128;
constexpr size_t kMaxString = 1024;
constexpr size_t kMaxWarnings = 200;
constexpr size_t kMaxWarning = 4096;

std::string check_result(const nlohmann::json& r, const std::string& run_id) {
  if (!r.is_object()) return "not a JSON object";
  if (!r.contains("status") || !r["status"].is_string()) return "status: must be a string (\"ok\")";
  if (r["status"] != "ok") {
    auto st = r["status"].get<std::string>();
    return "status: " + (st.size() > kMaxString ? st.substr(0, kMaxString) + "..." : st);
  }
  if (r.contains("run") && (!r["run"].is_string() || r["run"] != run_id))
    return "run: " + r["run"].dump() + " is not this run (" + run_id + ")";
  if (!r.contains("metrics")) return "metrics: missing (a finished run reports its metrics)";
  if (r.contains("stage") && !r["stage"].is_string()) return "stage: must be a string";
  if (r.contains("warnings")) {
    if (!r["warnings"].is_array()) return "warnings: must be a list of strings";
    if (r["warnings"].size() > kMaxWarnings)
      return "warnings: " + std::to_string(r["warnings"].size()) + " entries, more than " +
             std::to_string(kMaxWarnings);
    for (auto& w : r["warnings"]) {
      if (!w.is_string()) return "warnings: must be a list of strings";
      if (w.get<std::string>().size() > kMaxWarning)
        return "warnings: an entry of " + std::to_string(w.get<std::string>().size()) +
               " bytes, more than " + std::to_string(kMaxWarning);
    }
  }
  if (r.contains("files")) {
    if (!r["files"].is_object()) return "files: must be an object";
    for (auto& [k, v] : r["files"].items())
      if (!v.is_string() || v.get<std::string>().size() > kMaxWarning)
        return "files." + k.substr(0, kMaxKey) + ": must be a path (a string of at most " +
               std::to_string(kMaxWarning) + " bytes)";
  }
  if (!r["metrics"].is_object()) return "metrics: must be an object";
  if (r["metrics"].empty()) return "metrics: empty (a finished run reports its metrics)";
  if (r["metrics"].size() > kMaxMetrics)
    return "metrics: " + std::to_string(r["metrics"].size()) + " entries, more than " +
           std::to_string(kMaxMetrics);
  // A tagging stage's whole point is its score: without it the report would show a blank row.
  std::string stage = r.value("stage", std::string());
  if ((stage == "teacher" || stage == "student" || stage == "student_kd" ||
       stage == "student_finetune") &&
      !r["metrics"].contains("f1"))
    return "metrics.f1: missing (a " + stage + " run reports its test F1)";
  for (auto& [k, v] : r["metrics"].items()) {
    if (k.size() > kMaxKey || k.empty())
      return "metrics: a key of " + std::to_string(k.size()) + " bytes (1 to " +
             std::to_string(kMaxKey) + " allowed)";
    if (v.is_string() && v.get<std::string>().size() > kMaxString)
      return "metrics." + k + ": a string of " + std::to_string(v.get<std::string>().size()) +
             " bytes, more than " + std::to_string(kMaxString);
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
  // Read with the checks of every input (a FIFO here would hang every later command), then
  // bounded to what a result can be.
  constexpr std::uint64_t kMaxResultBytes = 1024 * 1024;
  std::string text;
  try {
    if (auto size = check_input(path, InputKind::Record); size > kMaxResultBytes) {
      error = path + ": " + format_bytes(size) + " is more than the " +
              format_bytes(kMaxResultBytes) + " a result.json may hold";
      return nullptr;
    }
    text = read_input(path, InputKind::Record);
  } catch (const Error& e) {
    error = e.what();
    return nullptr;
  }
  std::string parse_error;
  auto r = parse_json(text, &parse_error);
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
