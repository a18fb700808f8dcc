#include "orchestrator/spec.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <regex>

#include "common/atomic_file.h"
#include "common/input_file.h"
#include "common/params.h"
#include "common/strings.h"
#include "orchestrator/yaml_reader.h"
#include "workers/data/test_leak.h"

namespace kdx {
namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char buf[4096];
  if (!::getcwd(buf, sizeof buf)) return p;
  std::string cwd = buf;
  return cwd + "/" + p;
}

const std::regex& name_re() {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  return re;
}

std::string at(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

class SpecParser {
 public:
  // "${VAR}" in a path becomes the variable's value: shipped grids name checkpoint
  // locations (e.g. ${RUBERT_DIR}) that each user sets once.
  std::string expand_env(const std::string& value, const YAML::Node& node,
                         const std::string& path) const {
    return replace_fields(value, "${", "}",
                          [&](const std::string& var) -> std::optional<std::string> {
                            const char* v = std::getenv(var.c_str());
                            if (!v || !*v)
                              y_.fail(node, path, "environment variable " + var + " is not set");
                            return std::string(v);
                          });
  }

  SpecParser(const YamlReader& y, const SpecOptions& opt) : y_(y), opt_(opt) {}

  Spec parse() {
    Spec s;
    s.file = y_.file();
    auto root = y_.root();
    if (!root.IsMap())
      y_.fail(
          root, "",
          "an experiment file must be a mapping with experiment:, datasets:, teacher:, students:");
    y_.check_keys(
        root, "",
        {"experiment", "datasets", "pretrain", "teacher", "logits", "students", "worker"});
    for (const char* required : {"experiment", "datasets", "teacher", "students"})
      if (!root[required]) y_.fail(root, required, "missing (required)");

    s.experiment = y_.get_string(root["experiment"], "experiment");
    if (!std::regex_match(s.experiment, name_re()))
      y_.fail(root["experiment"], "experiment",
              "'" + s.experiment + "' is not a valid name (letters, digits, '_', '-', '.')");

    s.data_root = resolve_data_root(opt_.data_dir);
    parse_datasets(root["datasets"], s);
    if (root["pretrain"]) parse_pretrain(root["pretrain"], s);
    parse_teacher(root["teacher"], s.teacher);
    if (s.pretrain.enabled) {
      for (auto key : {"init_from", "layers", "hidden", "heads", "ffn", "vocab_size", "lowercase",
                       "init_range"})
        if (root["teacher"][key])
          y_.fail(root["teacher"][key], at("teacher", key),
                  "set by the pretrain stage (the teacher fine-tunes the pretrained encoder); "
                  "move it under pretrain:");
      if (!s.teacher.checkpoint.empty())
        y_.fail(root["teacher"]["checkpoint"], "teacher.checkpoint",
                "a finished teacher cannot be combined with a pretrain stage");
    }
    if (root["logits"]) {
      auto n = root["logits"];
      y_.expect_map(n, "logits");
      std::vector<std::string> keys = {"resources"};
      for (auto& d : logits_params()) keys.push_back(d.name);
      y_.check_keys(n, "logits", keys);
      if (n["resources"]) s.logits_resources = parse_resources(n["resources"], "logits.resources");
      for (auto& d : logits_params())
        if (n[d.name])
          s.logits[d.name] = check(n[d.name], at("logits", d.name), logits_params(), d.name);
    }
    parse_students(root["students"], s);
    if (root["worker"]) parse_worker(root["worker"], s.worker);
    if (opt_.check_data_files) check_test_leaks(root, s);
    return s;
  }

 private:
  // Validates a value against the stage's parameter table and returns it as JSON.
  nlohmann::json check(const YAML::Node& node, const std::string& path,
                       const std::vector<ParamDef>& defs, const std::string& key) {
    const ParamDef* def = find_param(defs, key);
    if (!def) y_.fail(node, path, "unknown parameter (expected one of: " + known_names(defs) + ")");
    auto v = y_.to_json(node, path);
    auto err = check_param(*def, v);
    if (!err.empty()) y_.fail(node, path, err);
    return normalize_numbers(v);
  }

  void parse_datasets(const YAML::Node& n, Spec& s) {
    y_.expect_seq(n, "datasets");
    if (n.size() == 0) y_.fail(n, "datasets", "empty list: at least one dataset is needed");
    for (size_t i = 0; i < n.size(); ++i) {
      std::string path = "datasets[" + std::to_string(i) + "]";
      auto d = n[i];
      y_.expect_map(d, path);
      y_.check_keys(d, path, {"name", "format", "train", "dev", "test", "unlabeled"});
      for (const char* required : {"name", "format", "train", "test"})
        if (!d[required]) y_.fail(d, at(path, required), "missing (required)");
      DatasetSpec ds;
      ds.loc = y_.where(d);
      ds.name = y_.get_string(d["name"], at(path, "name"));
      if (!std::regex_match(ds.name, name_re()))
        y_.fail(d["name"], at(path, "name"), "'" + ds.name + "' is not a valid name");
      for (auto& other : s.datasets)
        if (other.name == ds.name)
          y_.fail(d["name"], at(path, "name"), "duplicate dataset name '" + ds.name + "'");
      ds.format = y_.get_string(d["format"], at(path, "format"));
      if (ds.format != "runne" && ds.format != "rurebus" && ds.format != "conll")
        y_.fail(d["format"], at(path, "format"),
                "'" + ds.format + "' is not one of: runne, rurebus, conll");
      for (const char* split : {"train", "dev", "test", "unlabeled"}) {
        if (!d[split]) continue;
        parse_files(d[split], at(path, split), s.data_root, ds.format, ds.splits[split],
                    ds.resolved_splits[split]);
      }
      s.datasets.push_back(ds);
    }
  }

  // A file or a list of files, relative to the data root; each must exist.
  void parse_files(const YAML::Node& node, const std::string& path, const std::string& root,
                   const std::string& fetch_hint, std::vector<std::string>& rel_out,
                   std::vector<std::string>& abs_out) {
    std::vector<YAML::Node> files;
    if (node.IsSequence()) {
      if (node.size() == 0) y_.fail(node, path, "empty list of files");
      for (auto&& f : node) files.push_back(f);
    } else {
      files.push_back(node);
    }
    for (auto& f : files) {
      std::string rel = expand_env(y_.get_string(f, path), f, path);
      std::string abs = rel[0] == '/' ? rel : root + "/" + rel;
      if (opt_.check_data_files && !file_exists(abs))
        y_.fail(f, path,
                "file not found: " + abs + " (data root " + root +
                    "; get the data with `kdx data fetch " + fetch_hint +
                    "`, or set --data-dir / KDX_DATA_DIR)");
      if (opt_.check_data_files) {
        // A FIFO, a device or an oversized file fails here, not hours later in a worker.
        try {
          check_input(abs, InputKind::Data);
        } catch (const Error& e) {
          y_.fail(f, path, e.what());
        }
      }
      rel_out.push_back(rel);
      abs_out.push_back(abs);
      file_nodes_[abs] = {f, path};
    }
  }

  void parse_pretrain(const YAML::Node& n, Spec& s) {
    y_.expect_map(n, "pretrain");
    PretrainSpec& p = s.pretrain;
    p.enabled = true;
    if (!n["corpus"]) y_.fail(n, "pretrain.corpus", "missing (required): the text to pretrain on");
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.as<std::string>();
      std::string path = at("pretrain", key);
      if (key == "resources") {
        p.resources = parse_resources(it->second, path);
      } else if (key == "corpus") {
        parse_files(it->second, path, s.data_root, "runne rurebus", p.corpus, p.resolved_corpus);
      } else if (!find_param(pretrain_params(), key)) {
        y_.fail(it->first, path,
                "unknown key (expected one of: corpus, resources, " +
                    known_names(pretrain_params()) + ")");
      } else {
        auto v = check(it->second, path, pretrain_params(), key);
        if (key == "init_from") {
          v = absolute(expand_env(v.get<std::string>(), it->second, path));
          if (!is_dir(v.get<std::string>()))
            y_.fail(it->second, path, "not a directory: " + v.get<std::string>());
          for (auto arch :
               {"layers", "hidden", "heads", "ffn", "vocab_size", "lowercase", "init_range"})
            if (n[arch])
              y_.fail(n[arch], at("pretrain", arch),
                      "cannot be set together with pretrain.init_from (the checkpoint's "
                      "config.json defines the architecture)");
        }
        p.params[key] = v;
      }
    }
  }

  // Unlabelled text (a pretraining corpus, a dataset's unlabeled files) must not hold any
  // test document of the experiment: refused here, pointing at the file's entry.
  void check_test_leaks(const YAML::Node&, const Spec& s) {
    std::vector<std::string> unlabelled = s.pretrain.resolved_corpus;
    std::vector<data::TestSplit> tests;
    for (auto& d : s.datasets) {
      if (d.resolved_splits.count("unlabeled"))
        for (auto& f : d.resolved_splits.at("unlabeled")) unlabelled.push_back(f);
      if (d.resolved_splits.count("test"))
        tests.push_back({d.name, d.format, d.resolved_splits.at("test")});
    }
    std::optional<data::Leak> leak;
    try {
      leak = data::find_test_leak(unlabelled, tests);
    } catch (const Error& e) {
      throw Error(s.file + ": while checking unlabelled text against the test sets: " + e.what());
    }
    if (!leak) return;
    auto& [node, path] = file_nodes_.at(leak->file);
    y_.fail(node, path, leak->message());
  }

  void parse_teacher(const YAML::Node& n, TeacherSpec& t) {
    y_.expect_map(n, "teacher");
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.as<std::string>();
      std::string path = at("teacher", key);
      if (key == "resources") {
        t.resources = parse_resources(it->second, path);
      } else if (key == "checkpoint") {
        t.checkpoint = absolute(expand_env(y_.get_string(it->second, path), it->second, path));
        if (!is_dir(t.checkpoint)) y_.fail(it->second, path, "not a directory: " + t.checkpoint);
      } else if (!find_param(teacher_params(), key)) {
        y_.fail(it->first, path,
                "unknown key (expected one of: checkpoint, resources, " +
                    known_names(teacher_params()) + ")");
      } else {
        auto v = check(it->second, path, teacher_params(), key);
        if (key == "init_from") {
          v = absolute(expand_env(v.get<std::string>(), it->second, path));
          if (!is_dir(v.get<std::string>()))
            y_.fail(it->second, path, "not a directory: " + v.get<std::string>());
        }
        t.params[key] = v;
      }
    }
  }

  std::vector<nlohmann::json> values_of(const YAML::Node& list, const std::string& path,
                                        const std::string& key) {
    if (!list.IsSequence())
      y_.fail(list, path,
              "expected a list of values, got a single value (write [" +
                  (list.IsScalar() ? list.Scalar() : std::string("...")) +
                  "] or move it to fixed:)");
    if (list.size() == 0) y_.fail(list, path, "empty list: the grid would have no runs");
    std::vector<nlohmann::json> out;
    for (size_t i = 0; i < list.size(); ++i)
      out.push_back(check(list[i], path + "[" + std::to_string(i) + "]", student_params(), key));
    return out;
  }

  std::vector<Axis> parse_axes(const YAML::Node& n, const std::string& path) {
    y_.expect_map(n, path);
    std::vector<Axis> axes;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.as<std::string>();
      std::string kpath = at(path, key);
      if (!find_param(student_params(), key))
        y_.fail(it->first, kpath,
                "unknown parameter (expected one of: " + known_names(student_params()) + ")");
      axes.push_back({key, values_of(it->second, kpath, key), y_.where(it->first)});
    }
    return axes;
  }

  nlohmann::json parse_point(const YAML::Node& n, const std::string& path, bool lists_allowed) {
    y_.expect_map(n, path);
    nlohmann::json point = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.as<std::string>();
      std::string kpath = at(path, key);
      if (!find_param(student_params(), key))
        y_.fail(it->first, kpath,
                "unknown parameter (expected one of: " + known_names(student_params()) + ")");
      if (lists_allowed && it->second.IsSequence()) {
        point[key] = nlohmann::json(values_of(it->second, kpath, key));
      } else {
        point[key] = check(it->second, kpath, student_params(), key);
      }
    }
    return point;
  }

  void parse_random(const YAML::Node& n, RandomSpec& r) {
    const std::string path = "students.random";
    y_.expect_map(n, path);
    y_.check_keys(n, path, {"samples", "seed", "params"});
    if (!n["samples"]) y_.fail(n, at(path, "samples"), "missing (required)");
    if (!n["params"]) y_.fail(n, at(path, "params"), "missing (required)");
    long samples = y_.get_int(n["samples"], at(path, "samples"));
    if (samples < 1 || samples > 1000000)
      y_.fail(n["samples"], at(path, "samples"),
              "must be between 1 and 1000000, got " + std::to_string(samples));
    r.samples = static_cast<int>(samples);
    if (n["seed"]) r.seed = static_cast<uint64_t>(y_.get_int(n["seed"], at(path, "seed")));
    auto params = n["params"];
    y_.expect_map(params, at(path, "params"));
    for (auto it = params.begin(); it != params.end(); ++it) {
      std::string key = it->first.as<std::string>();
      std::string kpath = at(path, "params." + key);
      const ParamDef* def = find_param(student_params(), key);
      if (!def)
        y_.fail(it->first, kpath,
                "unknown parameter (expected one of: " + known_names(student_params()) + ")");
      auto dn = it->second;
      if (!dn.IsMap() || dn.size() != 1)
        y_.fail(dn, kpath,
                "expected one of {choice: [...]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]}, "
                "{int: [lo, hi]}");
      Distribution d;
      d.kind = dn.begin()->first.as<std::string>();
      auto args = dn.begin()->second;
      std::string apath = kpath + "." + d.kind;
      if (d.kind == "choice") {
        d.args = values_of(args, apath, key);
      } else if (d.kind == "uniform" || d.kind == "loguniform" || d.kind == "int") {
        if (!args.IsSequence() || args.size() != 2) y_.fail(args, apath, "expected [low, high]");
        for (auto&& a : args) d.args.push_back(y_.to_json(a, apath));
        bool ints = d.kind == "int";
        for (auto& a : d.args)
          if (ints ? !a.is_number_integer() : !a.is_number())
            y_.fail(args, apath, ints ? "bounds must be integers" : "bounds must be numbers");
        double lo = d.args[0].get<double>(), hi = d.args[1].get<double>();
        if (ints ? lo > hi : lo >= hi) y_.fail(args, apath, "low must be below high");
        if (d.kind == "loguniform" && lo <= 0)
          y_.fail(args, apath, "loguniform bounds must be positive");
        ParamType want = def->type;
        if (ints && want != ParamType::Int && want != ParamType::Float)
          y_.fail(args, apath, "parameter is " + type_name(want) + ", not a number");
        if (!ints && want != ParamType::Float)
          y_.fail(args, apath, "parameter is " + type_name(want) + ": use choice: or int:");
        if (lo < def->min || hi > def->max)
          y_.fail(args, apath,
                  "bounds must lie within the parameter's range " + format_number(def->min) +
                      " .. " + format_number(def->max));
      } else {
        y_.fail(dn.begin()->first, apath,
                "unknown distribution (expected choice, uniform, loguniform, int)");
      }
      r.params.emplace_back(key, d);
    }
  }

  void parse_students(const YAML::Node& n, Spec& s) {
    StudentSpec& st = s.students;
    y_.expect_map(n, "students");
    y_.check_keys(n, "students",
                  {"fixed", "grid", "zip", "exclude", "include", "random", "resources"});
    if (n["fixed"]) st.fixed = parse_point(n["fixed"], "students.fixed", false);
    if (n["grid"]) st.grid = parse_axes(n["grid"], "students.grid");
    if (n["zip"]) {
      st.zip = parse_axes(n["zip"], "students.zip");
      for (auto& a : st.zip)
        if (a.values.size() != st.zip[0].values.size())
          throw_at(a.loc,
                   "students.zip." + a.key + ": has " + std::to_string(a.values.size()) +
                       " values but students.zip." + st.zip[0].key + " has " +
                       std::to_string(st.zip[0].values.size()) + " (zip advances lists together)",
                   &y_.text());
    }
    for (const char* key : {"exclude", "include"}) {
      if (!n[key]) continue;
      std::string path = at("students", key);
      y_.expect_seq(n[key], path);
      for (size_t i = 0; i < n[key].size(); ++i) {
        std::string ipath = path + "[" + std::to_string(i) + "]";
        auto point = parse_point(n[key][i], ipath, std::string(key) == "exclude");
        (std::string(key) == "exclude" ? st.exclude : st.include).push_back(point);
      }
    }
    if (n["random"]) parse_random(n["random"], st.random);
    if (n["resources"]) st.resources = parse_resources(n["resources"], "students.resources");
    // Dataset names used in the grid must exist.
    auto check_dataset = [&](const nlohmann::json& v, const YAML::Node& node,
                             const std::string& path) {
      for (auto& d : s.datasets)
        if (d.name == v.get<std::string>()) return;
      y_.fail(node, path, "unknown dataset '" + v.get<std::string>() + "' (not in datasets:)");
    };
    if (st.fixed.contains("dataset"))
      check_dataset(st.fixed["dataset"], n["fixed"]["dataset"], "students.fixed.dataset");
    for (auto& a : st.grid)
      if (a.key == "dataset")
        for (size_t i = 0; i < a.values.size(); ++i)
          check_dataset(a.values[i], n["grid"]["dataset"][i],
                        "students.grid.dataset[" + std::to_string(i) + "]");
  }

  Resources parse_resources(const YAML::Node& n, const std::string& path) {
    y_.expect_map(n, path);
    std::vector<std::string> keys;
    for (auto& d : resource_params()) keys.push_back(d.name);
    y_.check_keys(n, path, keys);
    Resources r;
    // Each value is checked against the one table as a 64-bit number or a parsed Slurm string
    // before it becomes an int or an #SBATCH line (4294967297 CPUs must not wrap to 1).
    for (auto& d : resource_params()) {
      if (!n[d.name]) continue;
      auto v = y_.to_json(n[d.name], at(path, d.name));
      if (d.type == ParamType::String && v.is_number()) v = v.dump();  // `partition: 7`
      auto err = check_param(d, v);
      if (!err.empty()) y_.fail(n[d.name], at(path, d.name), err);
      auto text = v.is_string() ? v.get<std::string>() : v.dump();
      if (d.name == "nodes") r.nodes = v.get<int>();
      if (d.name == "gpus_per_node") r.gpus_per_node = v.get<int>();
      if (d.name == "cpus") r.cpus = v.get<int>();
      if (d.name == "array_throttle") r.array_throttle = v.get<int>();
      if (d.name == "mem") r.mem = text;
      if (d.name == "time") r.time = text;
      for (auto [key, out] :
           {std::pair{"partition", &r.partition}, {"account", &r.account}, {"qos", &r.qos}}) {
        if (d.name != key) continue;
        *out = text;
        if (!valid_slurm_name(*out))
          y_.fail(n[key], at(path, key),
                  "'" + *out + "' may only hold letters, digits, '_', '-', '.', ','");
      }
    }
    return r;
  }

  void parse_worker(const YAML::Node& n, WorkerSpec& w) {
    y_.expect_map(n, "worker");
    y_.check_keys(n, "worker", {"command", "env", "setup", "sbatch_template"});
    if (n["sbatch_template"]) {
      w.sbatch_template =
          absolute(expand_env(y_.get_string(n["sbatch_template"], "worker.sbatch_template"),
                              n["sbatch_template"], "worker.sbatch_template"));
      if (!file_exists(w.sbatch_template))
        y_.fail(n["sbatch_template"], "worker.sbatch_template",
                "file not found: " + w.sbatch_template);
    }
    if (n["command"]) {
      y_.expect_seq(n["command"], "worker.command");
      if (n["command"].size() == 0) y_.fail(n["command"], "worker.command", "empty command");
      for (size_t i = 0; i < n["command"].size(); ++i)
        w.command.push_back(
            y_.get_string(n["command"][i], "worker.command[" + std::to_string(i) + "]"));
    }
    if (n["env"]) {
      y_.expect_map(n["env"], "worker.env");
      static const std::regex var("[A-Za-z_][A-Za-z0-9_]*");
      for (auto it = n["env"].begin(); it != n["env"].end(); ++it) {
        std::string k = it->first.as<std::string>();
        if (!std::regex_match(k, var))
          y_.fail(it->first, "worker.env." + k, "not a valid variable name");
        w.env[k] = y_.get_string(it->second, "worker.env." + k);
      }
    }
    if (n["setup"]) {
      y_.expect_seq(n["setup"], "worker.setup");
      for (size_t i = 0; i < n["setup"].size(); ++i)
        w.setup.push_back(y_.get_string(n["setup"][i], "worker.setup[" + std::to_string(i) + "]"));
    }
  }

  const YamlReader& y_;
  const SpecOptions& opt_;
  std::map<std::string, std::pair<YAML::Node, std::string>> file_nodes_;  // absolute -> entry
};

}  // namespace

std::string resolve_data_root(const std::string& data_dir_option) {
  if (!data_dir_option.empty()) return absolute(data_dir_option);
  if (const char* env = std::getenv("KDX_DATA_DIR"); env && *env) return absolute(env);
  for (const char* candidate : {"../shared/data", "data"})
    if (is_dir(candidate)) return absolute(candidate);
  return absolute("data");
}

Spec parse_spec_text(const std::string& text, const std::string& file_name,
                     const SpecOptions& options) {
  YamlReader y(file_name, text);
  return SpecParser(y, options).parse();
}

Spec parse_spec(const std::string& path, const SpecOptions& options) {
  return parse_spec_text(read_input(path, InputKind::Spec), path, options);
}

}  // namespace kdx
