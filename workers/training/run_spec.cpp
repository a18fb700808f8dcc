#include "workers/training/run_spec.h"

#include <algorithm>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/params.h"
#include "common/strings.h"

namespace kdx::training {
namespace {

// `key` as a C string: a std::string parameter would make every call with a literal bind
// the returned reference next to a temporary (GCC 13+'s -Wdangling-reference).
const nlohmann::json& field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": missing field \"" + std::string(key) + "\"");
  return j[key];
}

// An optional string field: "" when absent, an error naming it when it is anything else.
std::string optional_string(const nlohmann::json& obj, const std::string& key,
                            const std::string& where, const std::string& name) {
  if (!obj.is_object()) throw Error(where + ": field \"" + name + "\" must be an object");
  if (!obj.contains(key)) return "";
  if (!obj[key].is_string())
    throw Error(where + ": field \"" + name + "." + key + "\" must be a string");
  return obj[key].get<std::string>();
}

}  // namespace

RunSpec read_run_spec(const std::string& path) {
  std::string why;
  auto j = parse_json(read_input(path, InputKind::Record), &why);
  if (j.is_discarded()) throw Error(path + ": " + why);  // not valid JSON, or nested too deep
  if (!j.is_object()) throw Error(path + ": not a JSON object");
  RunSpec s;
  s.path = path;
  auto str = [&](const char* key) {
    auto& v = field(j, key, path);
    if (!v.is_string()) throw Error(path + ": field \"" + std::string(key) + "\" must be a string");
    return v.get<std::string>();
  };
  auto& version = field(j, "kdx_run_version", path);
  if (!version.is_number_integer() || version.get<int64_t>() != 1)
    throw Error(path + ": kdx_run_version " + version.dump() +
                " is not supported by this kdx-worker (1)");
  s.id = str("id");
  s.experiment = str("experiment");
  s.stage = str("stage");
  {
    const auto& names = stage_names();
    if (std::find(names.begin(), names.end(), s.stage) == names.end())
      throw Error(path + ": field \"stage\": '" + s.stage +
                  "' is not one of: " + join(names, ", "));
  }
  s.run_dir = str("run_dir");
  auto top = [&](const char* key) {
    if (j.contains(key) && !j[key].is_string())
      throw Error(path + ": field \"" + std::string(key) + "\" must be a string");
    return j.contains(key) ? j[key].get<std::string>() : std::string();
  };
  s.teacher_dir = top("teacher_dir");
  s.logits_dir = top("logits_dir");
  s.pretrain_dir = top("pretrain_dir");
  s.student_dir = top("student_dir");
  s.vectors_file = top("vectors_file");
  auto strings = [&](const nlohmann::json& v, const std::string& name) {
    if (!v.is_array()) throw Error(path + ": field \"" + name + "\" must be a list of paths");
    std::vector<std::string> out;
    for (auto& e : v) {
      if (!e.is_string()) throw Error(path + ": field \"" + name + "\" must be a list of paths");
      out.push_back(e.get<std::string>());
    }
    return out;
  };
  if (j.contains("unlabeled")) s.unlabeled = strings(j["unlabeled"], "unlabeled");
  if (j.contains("teacher_dirs")) {
    s.teacher_dirs = strings(j["teacher_dirs"], "teacher_dirs");
    if (s.teacher_dirs.empty() || s.teacher_dirs.front() != s.teacher_dir)
      throw Error(path +
                  ": field \"teacher_dirs\": the ensemble's first member must be "
                  "teacher_dir");
  }
  if (s.stage == "pretrain") {
    s.corpus = strings(field(j, "corpus", path), "corpus");
    if (s.corpus.empty()) throw Error(path + ": field \"corpus\" is empty");
    if (j.contains("test_splits") && j["test_splits"].is_array())
      for (auto& t : j["test_splits"])
        s.test_splits.push_back(
            {optional_string(t, "dataset", path, "test_splits"),
             optional_string(t, "format", path, "test_splits"),
             strings(t.contains("files") ? t["files"] : nlohmann::json::array(), "test_splits")});
  } else {
    auto& ds = field(j, "dataset", path);
    if (!ds.is_object()) throw Error(path + ": field \"dataset\" must be an object");
    s.dataset = optional_string(ds, "name", path, "dataset");
    s.format = optional_string(ds, "format", path, "dataset");
    for (auto split : {"train", "dev", "test"})
      if (ds.contains(split)) s.files[split] = strings(ds[split], std::string("dataset.") + split);
    if (!s.files.count("train")) throw Error(path + ": dataset has no train files");
  }
  s.params = field(j, "params", path);
  if (!s.params.is_object()) throw Error(path + ": field \"params\" must be an object");
  // The same table kdx validated the experiment with: a run.json edited by hand (or by a
  // newer kdx) cannot hand the worker a value it would crash or silently misbehave on.
  validate_params(params_of_stage(s.stage), s.params, path);
  if (j.contains("resources")) {
    auto& r = j["resources"];
    if (!r.is_object()) throw Error(path + ": field \"resources\" must be an object");
    if (r.contains("cpus")) {
      if (!r["cpus"].is_number_integer() || r["cpus"].get<int64_t>() < 1 ||
          r["cpus"].get<int64_t>() > 4096)
        throw Error(path + ": field \"resources.cpus\" must be an integer in [1, 4096]");
      s.cpus = static_cast<int>(r["cpus"].get<int64_t>());
    }
  }
  if (s.stage != "teacher" && s.stage != "pretrain" && s.teacher_dir.empty())
    throw Error(path + ": a " + s.stage + " run needs \"teacher_dir\"");
  return s;
}

int64_t RunSpec::param_int64(const std::string& key) const {
  if (!params.contains(key) || !params[key].is_number())
    throw Error(path + ": params." + key + ": missing or not a number");
  return params[key].is_number_float() ? static_cast<int64_t>(params[key].get<double>())
                                       : params[key].get<int64_t>();
}

int RunSpec::param_int(const std::string& key) const {
  if (!params.contains(key) || !params[key].is_number())
    throw Error(path + ": params." + key + ": missing or not a number");
  int64_t v = param_int64(key);
  if (v < INT32_MIN || v > INT32_MAX)
    throw Error(path + ": params." + key + ": " + std::to_string(v) + " does not fit");
  return static_cast<int>(v);
}
double RunSpec::param_double(const std::string& key) const {
  if (!params.contains(key) || !params[key].is_number())
    throw Error(path + ": params." + key + ": missing or not a number");
  return params[key].get<double>();
}
std::string RunSpec::param_string(const std::string& key) const {
  if (!params.contains(key) || !params[key].is_string())
    throw Error(path + ": params." + key + ": missing or not a string");
  return params[key].get<std::string>();
}
bool RunSpec::param_bool(const std::string& key) const {
  if (!params.contains(key) || !params[key].is_boolean())
    throw Error(path + ": params." + key + ": missing or not a boolean");
  return params[key].get<bool>();
}

}  // namespace kdx::training
