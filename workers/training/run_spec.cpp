#include "workers/training/run_spec.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_io.h"
#include "common/params.h"

namespace kdx::training {
namespace {

const nlohmann::json& field(const nlohmann::json& j, const std::string& key,
                            const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": missing field \"" + key + "\"");
  return j[key];
}

}  // namespace

RunSpec read_run_spec(const std::string& path) {
  auto j = parse_json(read_file(path));
  if (!j.is_object()) throw Error(path + ": not a JSON object");
  RunSpec s;
  s.path = path;
  auto str = [&](const char* key) {
    auto& v = field(j, key, path);
    if (!v.is_string()) throw Error(path + ": field \"" + std::string(key) + "\" must be a string");
    return v.get<std::string>();
  };
  int version = field(j, "kdx_run_version", path).get<int>();
  if (version != 1)
    throw Error(path + ": kdx_run_version " + std::to_string(version) +
                " is not supported by this kdx-worker (1)");
  s.id = str("id");
  s.experiment = str("experiment");
  s.stage = str("stage");
  if (s.stage != "pretrain" && s.stage != "teacher" && s.stage != "logits" && s.stage != "student")
    throw Error(path + ": field \"stage\": '" + s.stage +
                "' is not pretrain, teacher, logits or student");
  s.run_dir = str("run_dir");
  s.teacher_dir = j.value("teacher_dir", "");
  s.logits_dir = j.value("logits_dir", "");
  s.pretrain_dir = j.value("pretrain_dir", "");
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
  if (s.stage == "pretrain") {
    s.corpus = strings(field(j, "corpus", path), "corpus");
    if (s.corpus.empty()) throw Error(path + ": field \"corpus\" is empty");
    if (j.contains("test_splits") && j["test_splits"].is_array())
      for (auto& t : j["test_splits"])
        s.test_splits.push_back(
            {t.value("dataset", ""), t.value("format", ""),
             strings(t.value("files", nlohmann::json::array()), "test_splits")});
  } else {
    auto& ds = field(j, "dataset", path);
    if (!ds.is_object()) throw Error(path + ": field \"dataset\" must be an object");
    s.dataset = ds.value("name", "");
    s.format = ds.value("format", "");
    for (auto split : {"train", "dev", "test"})
      if (ds.contains(split)) s.files[split] = strings(ds[split], std::string("dataset.") + split);
    if (!s.files.count("train")) throw Error(path + ": dataset has no train files");
  }
  s.params = field(j, "params", path);
  if (!s.params.is_object()) throw Error(path + ": field \"params\" must be an object");
  // The same table kdx validated the experiment with: a run.json edited by hand (or by a
  // newer kdx) cannot hand the worker a value it would crash or silently misbehave on.
  validate_params(params_of_stage(s.stage), s.params, path);
  if (j.contains("resources")) s.cpus = j["resources"].value("cpus", 1);
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
