#include "orchestrator/planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/params.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "orchestrator/grid.h"
#include "workers/data/fetch.h"

namespace kdx {

nlohmann::json teacher_defaults() {
  return {{"arch", "bert"},
          {"layers", 2},
          {"hidden", 128},
          {"heads", 2},
          {"ffn", 512},
          {"vocab_size", 8000},
          {"lowercase", false},
          {"init_range", 0.02},
          {"dropout", 0.1},
          {"epochs", 3},
          {"batch_size", 16},
          {"lr", 5e-4},
          {"weight_decay", 0.01},
          {"warmup_steps", 50},
          {"grad_clip", 1.0},
          {"patience", 0},
          {"seed", 1},
          {"window", 128},
          // BILOU per type, decoded by Viterbi on word boundaries: +14.7 Mention F1 and +11.4
          // macro F1 over per_type_bio with greedy decoding (README "Reproducing the paper").
          {"tagging", "per_type_bilou"},
          {"decoding", "viterbi"},
          {"max_train_docs", 0},
          {"max_test_docs", 0},
          {"checkpoint_every", 200},
          {"threads", 0},
          {"ranks", 1}};
}

nlohmann::json student_defaults() {
  return {
      {"arch", "lstm"},
      {"hidden", 128},
      {"layers", 1},
      {"emb", 128},
      {"proj", 0},
      {"dropout", 0.1},
      {"init_embedding", false},
      {"vocab", "trimmed"},
      {"rescale", false},
      {"loss", {{"ce_weight", 1.0}, {"kd_weight", 1.0}, {"kd_loss", "kl"}, {"temperature", 1.0}}},
      {"epochs", 30},
      {"batch_size", 16},
      {"weight_decay", 0.01},
      {"warmup_steps", 50},
      {"decoding", "viterbi"},
      // Halved on every epoch without a dev gain: a size that does not train at the peak
      // rate gets a lower one instead of staying at dev F1 0 (README "Reproducing the paper").
      {"lr_schedule", "plateau"},
      {"min_lr", 0.0001},
      {"grad_clip", 1.0},
      {"patience", 3},
      {"seed", 1},
      {"max_train_docs", 0},
      {"max_test_docs", 0},
      {"checkpoint_every", 200},
      {"threads", 0},
      {"ranks", 1}};
}

nlohmann::json pretrain_defaults() {
  return {{"layers", 2},
          {"hidden", 128},
          {"heads", 2},
          {"ffn", 512},
          {"vocab_size", 8000},
          {"lowercase", false},
          {"init_range", 0.02},
          {"dropout", 0.1},
          {"mask_prob", 0.15},
          {"whole_word_mask", false},
          {"heldout_every", 50},
          {"epochs", 3},
          {"batch_size", 32},
          {"lr", 5e-4},
          {"weight_decay", 0.01},
          {"warmup_steps", 100},
          {"grad_clip", 1.0},
          {"patience", 0},
          {"seed", 1},
          {"window", 128},
          {"checkpoint_every", 200},
          {"threads", 0},
          {"ranks", 1}};
}

nlohmann::json logits_defaults() {
  return {{"precision", "fp16"}, {"threads", 0}, {"source", "teacher"}};
}

nlohmann::json architecture_defaults(const std::string& arch) {
  // Learning rates from the sweep in the README (full RuNNE, hidden 128, CE only); the
  // highway biases are the reference implementation's (SRU 0, SRU++ -2).
  if (arch == "sru") return {{"lr", 0.01}, {"highway_bias", 0.0}};
  if (arch == "srupp") return {{"lr", 0.01}, {"highway_bias", -2.0}};
  // Residual connections between LSTM layers: without them LSTMs of 2 x 512 and 4 x 256 never
  // left dev F1 0 in the README's sweep (experiments/recipe/deep_lstm.yaml); one layer has none.
  return {{"lr", 0.01}, {"residual", true}};
}

std::string canonical_json(const nlohmann::json& config) {
  // nlohmann's object type is an std::map: dump() already sorts keys.
  return normalize_numbers(config).dump();
}

std::string run_id_of(const nlohmann::json& config) {
  return sha256_hex(canonical_json(config)).substr(0, 12);
}

namespace {
// For configs built from already-normalised parts: skips the normalising copy.
std::string id_of_normalized(const nlohmann::json& config) {
  return sha256_hex(config.dump()).substr(0, 12);
}
}  // namespace

namespace {

// A loss whose every weight is 0 trains on a zero objective: the run would end COMPLETED
// with the model it started from.
void check_objective(const nlohmann::json& params, const std::string& where) {
  if (!params.contains("loss") || !params["loss"].is_object()) return;
  auto& loss = params["loss"];
  double total = 0;
  for (auto key : {"ce_weight", "dice_weight", "kd_weight"})
    if (loss.contains(key) && loss[key].is_number()) total += loss[key].get<double>();
  if (total == 0)
    throw Error(where + ": loss: ce_weight, dice_weight and kd_weight are all 0 (" + loss.dump() +
                "): the run would learn nothing; give one of them a weight");
}

nlohmann::json dataset_identity(const DatasetSpec& d) {
  nlohmann::json splits = nlohmann::json::object();
  for (auto& [k, v] : d.splits)
    if (k != "unlabeled") splits[k] = v;  // only runs that read it name it
  return {{"name", d.name}, {"format", d.format}, {"splits", splits}};
}

nlohmann::json dataset_paths(const DatasetSpec& d) {
  nlohmann::json j = {{"name", d.name}, {"format", d.format}};
  for (auto& [k, v] : d.resolved_splits)
    if (k != "unlabeled") j[k] = v;
  return j;
}

const char* kArchitectureKeys[] = {"layers",     "hidden",    "heads",     "ffn",
                                   "vocab_size", "lowercase", "init_range"};

}  // namespace

std::string resolve_vectors_path(const std::string& file, const Spec& spec) {
  if (file == "navec") return data::default_navec_path();
  if (!file.empty() && file[0] == '/') return file;
  return spec.data_root + "/" + file;
}

namespace {
// params.vectors of a teacher or student: the file given and present, its format explicit
// (navec for `navec` and *.tar, else text) so that the run id says what the run reads.
void check_vectors(nlohmann::json& params, const Spec& spec, const std::string& where) {
  if (!params.contains("vectors")) return;
  auto& v = params["vectors"];
  if (!v.contains("file") || !v["file"].is_string() || v["file"].get<std::string>().empty())
    throw Error(where + ": vectors.file: required (navec, or a path to a vectors file)");
  std::string file = v["file"];
  if (!v.contains("format"))
    v["format"] = file == "navec" || (file.size() > 4 && file.substr(file.size() - 4) == ".tar")
                      ? "navec"
                      : "text";
  if (!v.contains("freeze")) v["freeze"] = true;
  if (!v.contains("join")) v["join"] = "concat";
  std::string path = resolve_vectors_path(file, spec);
  try {
    check_input(path, InputKind::Data);
  } catch (const Error& e) {
    throw Error(where + ": vectors.file: " + e.what() +
                (file == "navec" ? " (get it with `kdx data fetch navec --to ~/.cache/kdx`, or "
                                   "`make navec`)"
                                 : ""));
  }
}
}  // namespace

nlohmann::json make_run_json(const PlannedRun& r, const Spec& spec) {
  nlohmann::json ds_paths;
  for (auto& ds : spec.datasets)
    if (ds.name == r.dataset) ds_paths = dataset_paths(ds);
  nlohmann::json j = {{"kdx_run_version", 1},
                      {"id", r.id},
                      {"experiment", spec.experiment},
                      {"stage", r.stage},
                      {"config", r.config},
                      {"params", r.config["params"]},
                      {"dataset", ds_paths},
                      {"run_dir", r.run_dir},
                      {"teacher_dir", r.teacher_dir},
                      {"logits_dir", r.logits_dir},
                      {"resources", to_json(r.resources)}};
  if (!r.pretrain_dir.empty()) j["pretrain_dir"] = r.pretrain_dir;
  if (!r.student_dir.empty()) j["student_dir"] = r.student_dir;
  if (!r.teacher_dirs.empty()) j["teacher_dirs"] = r.teacher_dirs;
  if (r.config["params"].contains("vectors"))
    j["vectors_file"] =
        resolve_vectors_path(r.config["params"]["vectors"]["file"].get<std::string>(), spec);
  if (r.stage == "pretrain") {
    j["corpus"] = spec.pretrain.resolved_corpus;
    // The worker checks the corpus against every test split again (it may run elsewhere).
    nlohmann::json tests = nlohmann::json::array();
    for (auto& d : spec.datasets)
      if (d.resolved_splits.count("test"))
        tests.push_back(
            {{"dataset", d.name}, {"format", d.format}, {"files", d.resolved_splits.at("test")}});
    j["test_splits"] = tests;
  }
  if (r.unlabeled)
    for (auto& ds : spec.datasets)
      if (ds.name == r.dataset && ds.resolved_splits.count("unlabeled"))
        j["unlabeled"] = ds.resolved_splits.at("unlabeled");
  return j;
}

Plan make_plan(const Spec& spec, const std::string& results_dir) {
  Plan plan;
  plan.experiment = spec.experiment;
  plan.spec_file = spec.file;
  auto run_dir = [&](const std::string& id) {
    return results_dir + "/runs/" + spec.experiment + "/" + id;
  };

  nlohmann::json teacher = teacher_defaults();
  if (spec.teacher.params.contains("init_from")) {
    for (auto key : kArchitectureKeys) {
      if (spec.teacher.params.contains(key))
        throw Error(spec.file + ": teacher." + key +
                    ": cannot be set together with teacher.init_from "
                    "(the checkpoint's config.json defines the architecture)");
      teacher.erase(key);
    }
  }
  PlannedRun pre;
  if (spec.pretrain.enabled) {
    nlohmann::json params = pretrain_defaults();
    if (spec.pretrain.params.contains("init_from"))
      for (auto key : kArchitectureKeys) params.erase(key);
    deep_merge(params, spec.pretrain.params);
    pre.stage = "pretrain";
    pre.config = {{"experiment", spec.experiment},
                  {"stage", "pretrain"},
                  {"corpus", spec.pretrain.corpus},
                  {"params", normalize_numbers(params)}};
    pre.id = run_id_of(pre.config);
    pre.resources = spec.pretrain.resources;
    pre.run_dir = run_dir(pre.id);
    for (auto key : kArchitectureKeys) teacher.erase(key);  // the pretrained encoder's
  }
  deep_merge(teacher, spec.teacher.params);
  if (teacher["arch"] != "bert") {
    // A recurrent teacher: the students' shape parameters, its architecture's learning rate
    // unless given; the BERT-only ones dropped so that they do not enter its run id.
    if (spec.pretrain.enabled)
      throw Error(spec.file + ": teacher.arch: a " + teacher["arch"].get<std::string>() +
                  " teacher reads no pretrained BERT; remove `pretrain:` or use arch: bert");
    if (spec.teacher.params.contains("init_from"))
      throw Error(spec.file +
                  ": teacher.init_from: a Hugging Face BERT checkpoint, but "
                  "teacher.arch is " +
                  teacher["arch"].get<std::string>());
    for (auto key : {"heads", "ffn", "init_range"}) {
      if (spec.teacher.params.contains(key))
        throw Error(spec.file + ": teacher." + key + ": a BERT setting, but teacher.arch is " +
                    teacher["arch"].get<std::string>());
      teacher.erase(key);
    }
    nlohmann::json rec = {{"emb", 128}, {"proj", 0}, {"rescale", false}};
    deep_merge(rec, architecture_defaults(teacher["arch"].get<std::string>()));
    for (auto it = rec.begin(); it != rec.end(); ++it)
      if (!spec.teacher.params.contains(it.key())) teacher[it.key()] = it.value();
  }
  // A finished teacher fixes the tag layout its students must share: read it from the
  // checkpoint's own model.json rather than assuming this version's default.
  if (!spec.teacher.checkpoint.empty() && !spec.teacher.params.contains("tagging")) {
    std::string desc_path = spec.teacher.checkpoint + "/model.json";
    if (file_exists(desc_path)) {
      auto desc = nlohmann::json::parse(read_input(desc_path, InputKind::Record), nullptr, false);
      if (desc.is_object() && desc.contains("columns") && desc.contains("classes") &&
          desc["columns"].is_number_integer() && desc["classes"].is_number_integer()) {
        const int64_t columns = desc["columns"], classes = desc["classes"];
        teacher["tagging"] = columns == 1   ? "flat_bio"
                             : classes == 5 ? "per_type_bilou"
                                            : "per_type_bio";
      }
    }
  }
  check_vectors(teacher, spec, spec.file + ": teacher");
  // An ensemble: one teacher run per seed (the members differ in nothing else).
  std::vector<int64_t> ensemble_seeds;
  if (teacher.contains("ensemble_seeds")) {
    ensemble_seeds = teacher["ensemble_seeds"].get<std::vector<int64_t>>();
    teacher.erase("ensemble_seeds");
    if (ensemble_seeds.size() < 2)
      throw Error(spec.file + ": teacher.ensemble_seeds: an ensemble needs at least 2 seeds");
    if (std::set<int64_t>(ensemble_seeds.begin(), ensemble_seeds.end()).size() !=
        ensemble_seeds.size())
      throw Error(spec.file + ": teacher.ensemble_seeds: a seed is listed twice");
    if (spec.teacher.params.contains("seed"))
      throw Error(spec.file + ": teacher.seed: set together with teacher.ensemble_seeds");
    if (!spec.teacher.checkpoint.empty())
      throw Error(spec.file +
                  ": teacher.ensemble_seeds: a finished teacher checkpoint is one "
                  "model");
  }
  teacher = normalize_numbers(teacher);
  nlohmann::json logits = logits_defaults();
  // Only an ensemble's cache has a combination rule (single-teacher ids stay as they were).
  if (!ensemble_seeds.empty()) logits["combine"] = "mean_logits";
  deep_merge(logits, spec.logits);
  if (ensemble_seeds.empty() && spec.logits.contains("combine"))
    throw Error(spec.file +
                ": logits.combine: only a teacher ensemble (teacher.ensemble_seeds) "
                "has logits to combine");
  if (logits["source"] == "oracle") {
    nlohmann::json oracle = {{"oracle_margin", 4.0}, {"oracle_noise", 0.0}, {"seed", 1}};
    deep_merge(oracle, logits);
    logits = oracle;
  }

  auto points = expand_grid(spec.students, spec.file);

  for (auto& ds : spec.datasets) {
    // Students of this dataset: those naming it, or all when the grid names none.
    std::vector<nlohmann::json> mine;
    for (auto& p : points)
      if (!p.contains("dataset") || p["dataset"] == ds.name) mine.push_back(p);
    if (mine.empty()) continue;

    PlannedRun t;
    std::string teacher_ref;
    if (spec.teacher.checkpoint.empty()) {
      check_objective(teacher, spec.file + ": teacher");
      t.stage = "teacher";
      t.dataset = ds.name;
      t.config = {{"experiment", spec.experiment},
                  {"stage", "teacher"},
                  {"dataset", dataset_identity(ds)},
                  {"params", teacher}};
      if (!pre.id.empty()) {
        t.config["pretrain"] = pre.id;
        t.deps = {pre.id};
        t.pretrain_dir = pre.run_dir;
      }
      t.id = run_id_of(t.config);
      t.resources = spec.teacher.resources;
      t.run_dir = run_dir(t.id);
      teacher_ref = t.id;
    }
    // Ensemble members: the teacher run at each seed; `t` stays the first (its tokenizer and
    // types are the students').
    std::vector<PlannedRun> members;
    for (int64_t seed : ensemble_seeds) {
      PlannedRun m = t;
      m.config["params"]["seed"] = seed;
      m.config = normalize_numbers(m.config);
      m.id = run_id_of(m.config);
      m.run_dir = run_dir(m.id);
      members.push_back(std::move(m));
    }
    std::vector<std::string> member_dirs;
    nlohmann::json member_ids = nlohmann::json::array();
    if (!members.empty()) {
      t = members.front();
      for (auto& m : members) {
        member_dirs.push_back(m.run_dir);
        member_ids.push_back(m.id);
      }
    }

    PlannedRun l;
    l.stage = "logits";
    l.dataset = ds.name;
    l.config = {{"experiment", spec.experiment},
                {"stage", "logits"},
                {"dataset", dataset_identity(ds)},
                {"params", normalize_numbers(logits)},
                {"teacher", !members.empty() ? member_ids
                            : spec.teacher.checkpoint.empty()
                                ? nlohmann::json(t.id)
                                : nlohmann::json{{"checkpoint", spec.teacher.checkpoint}}}};
    const bool has_unlabeled = ds.splits.count("unlabeled") > 0;
    if (has_unlabeled) {
      l.config["unlabeled"] = ds.splits.at("unlabeled");
      l.unlabeled = true;
    }
    l.id = run_id_of(l.config);
    l.resources = spec.logits_resources;
    l.run_dir = run_dir(l.id);
    if (!t.id.empty()) l.deps = {t.id};
    if (!members.empty()) {
      l.deps.clear();
      for (auto& m : members) l.deps.push_back(m.id);
      l.teacher_dirs = member_dirs;
    }
    std::string teacher_dir = t.id.empty() ? spec.teacher.checkpoint : t.run_dir;
    l.teacher_dir = teacher_dir;
    // One logits run per combination rule the students learn from: an ensemble averaged two
    // ways is two caches of the same members. A single teacher's rule is "".
    const std::string default_rule = logits.value("combine", std::string());
    std::vector<PlannedRun> logits_runs;
    auto logits_for = [&](const std::string& rule) -> std::pair<std::string, std::string> {
      for (auto& x : logits_runs)
        if (x.config["params"].value("combine", std::string()) == rule) return {x.id, x.run_dir};
      PlannedRun x = l;
      if (rule != default_rule) {
        x.config["params"]["combine"] = rule;
        x.id = run_id_of(x.config);
        x.run_dir = run_dir(x.id);
      }
      logits_runs.push_back(std::move(x));
      return {logits_runs.back().id, logits_runs.back().run_dir};
    };

    bool any_kd = false;
    const nlohmann::json defaults = normalize_numbers(student_defaults());
    const nlohmann::json ds_identity = dataset_identity(ds);
    const nlohmann::json& teacher_ref_json = l.config["teacher"];
    std::vector<PlannedRun> students;
    students.reserve(mine.size());
    // Grid points whose phase-1 settings agree (the point's own under two_phase's overrides)
    // share one student_kd run.
    std::set<std::string> kd_phase_ids;
    // A student-stage run of this dataset: everything but its dependencies and data links.
    auto student_run = [&](const std::string& stage, nlohmann::json params, nlohmann::json extra) {
      check_objective(params, spec.file + ": students (" + stage + ")");
      check_vectors(params, spec, spec.file + ": students (" + stage + ")");
      PlannedRun r;
      r.stage = stage;
      r.dataset = ds.name;
      r.config = {{"experiment", spec.experiment},
                  {"stage", stage},
                  {"dataset", ds_identity},
                  {"params", std::move(params)},
                  {"teacher", teacher_ref_json}};
      r.config.update(extra);
      r.id = id_of_normalized(r.config);
      r.resources = spec.students.resources;
      r.run_dir = run_dir(r.id);
      r.teacher_dir = teacher_dir;
      r.teacher_dirs = member_dirs;
      return r;
    };
    for (auto& p : mine) {
      nlohmann::json params = defaults;
      deep_merge(params, p);  // both normalised already
      params.erase("dataset");
      const nlohmann::json arch_defaults =
          normalize_numbers(architecture_defaults(params["arch"].get<std::string>()));
      for (auto it = arch_defaults.begin(); it != arch_defaults.end(); ++it)
        if (!p.contains(it.key())) params[it.key()] = it.value();
      for (auto key : {"window", "tagging", "max_train_docs"}) {
        if (p.contains(key) && p[key] != teacher[key])
          throw Error(spec.file + ": students: " + std::string(key) + " = " + p[key].dump() +
                      " differs from the teacher's " + teacher[key].dump() +
                      " (student logits must align token by token with the teacher's)");
        params[key] = teacher[key];
      }
      if (params.contains("two_phase")) {
        // Phase 1 (student_kd): the architecture and the training settings, with two_phase's
        // overrides, on the transfer corpus from the teacher alone. Phase 2 (student_finetune):
        // the grid point as written, initialised from phase 1, supervised only.
        nlohmann::json phase = params["two_phase"];
        params.erase("two_phase");
        if (!has_unlabeled)
          throw Error(spec.file + ": students: two_phase: dataset '" + ds.name +
                      "' has no unlabeled: split (the transfer corpus the student_kd phase "
                      "distils on)");
        if (params["loss"].value("kd_weight", 0.0) != 0.0)
          throw Error(spec.file + ": students: two_phase: loss.kd_weight is " +
                      params["loss"]["kd_weight"].dump() +
                      ", but the fine-tuning phase is supervised only (the teacher is learned "
                      "from in the student_kd phase); set loss.kd_weight: 0");
        nlohmann::json kd_params = params;
        nlohmann::json kd_loss = {{"ce_weight", 0}, {"kd_weight", 1}, {"kd_loss", "mse"}};
        for (auto key : {"kd_loss", "temperature"})
          if (phase.contains(key)) {
            kd_loss[key] = phase[key];
            phase.erase(key);
          }
        for (auto it = phase.begin(); it != phase.end(); ++it) kd_params[it.key()] = it.value();
        kd_params["loss"] = kd_loss;
        kd_params.erase("sampler");  // phase 1 reads no gold: nothing to balance
        kd_params.erase("sampler_draws");
        if (params["loss"].contains("combine"))
          throw Error(spec.file +
                      ": students: two_phase: loss.combine: the fine-tuning phase reads no "
                      "logits; phase 1 learns from logits.combine");
        auto [kd_logits_id, kd_logits_dir] = logits_for(default_rule);
        PlannedRun k =
            student_run("student_kd", normalize_numbers(kd_params),
                        {{"logits", kd_logits_id}, {"unlabeled", ds.splits.at("unlabeled")}});
        k.unlabeled = true;
        k.deps = {kd_logits_id};
        k.logits_dir = kd_logits_dir;
        any_kd = true;
        PlannedRun f = student_run("student_finetune", std::move(params), {{"student_kd", k.id}});
        f.deps = {k.id};
        f.student_dir = k.run_dir;
        if (kd_phase_ids.insert(k.id).second) students.push_back(std::move(k));
        students.push_back(std::move(f));
        continue;
      }
      bool kd = params["loss"]["kd_weight"].get<double>() != 0.0;
      any_kd = any_kd || kd;
      std::string rule;
      if (params["loss"].contains("combine")) {
        if (members.empty())
          throw Error(spec.file +
                      ": students: loss.combine: only a teacher ensemble "
                      "(teacher.ensemble_seeds) has logits to combine");
        rule = params["loss"]["combine"].get<std::string>();
      } else {
        rule = default_rule;
      }
      // The rule is part of a KD student's configuration (its own row in the report); a
      // CE-only student reads no logits, so it stays the one twin of every rule.
      if (kd && !members.empty())
        params["loss"]["combine"] = rule;
      else
        params["loss"].erase("combine");
      std::pair<std::string, std::string> kd_logits;
      if (kd) kd_logits = logits_for(rule);
      nlohmann::json links = {{"logits", kd ? nlohmann::json(kd_logits.first) : nlohmann::json()}};
      // Distillation also runs on the dataset's unlabelled text (the teacher labels it).
      if (kd && has_unlabeled) links["unlabeled"] = ds.splits.at("unlabeled");
      PlannedRun s = student_run("student", std::move(params), links);
      s.unlabeled = kd && has_unlabeled;
      // Every student shares the teacher's tokenizer (its vocab.txt); KD students also need the
      // logits.
      if (kd)
        s.deps = {kd_logits.first};
      else if (!t.id.empty())
        s.deps = {t.id};
      if (kd) s.logits_dir = kd_logits.second;
      students.push_back(std::move(s));
    }

    if (!pre.id.empty() && plan.runs.empty()) plan.runs.push_back(pre);
    if (!members.empty())
      for (auto& m : members) plan.runs.push_back(std::move(m));
    else if (!t.id.empty())
      plan.runs.push_back(std::move(t));
    if (any_kd)
      for (auto& x : logits_runs) plan.runs.push_back(std::move(x));
    for (auto& s : students) plan.runs.push_back(std::move(s));
  }
  if (plan.runs.empty())
    throw Error(spec.file + ": students: no student run names a dataset from datasets:");
  return plan;
}

void keep_datasets(Plan& plan, const Spec& spec, const std::vector<std::string>& names) {
  if (names.empty()) return;
  std::vector<std::string> all;
  for (auto& ds : spec.datasets) all.push_back(ds.name);
  std::set<std::string> wanted;
  for (auto& n : names) {
    if (std::find(all.begin(), all.end(), n) == all.end())
      throw Error(spec.file + ": --dataset " + n +
                  ": no such dataset (the file has: " + join(all, ", ") + ")");
    wanted.insert(n);
  }
  std::set<std::string> needed;
  std::vector<PlannedRun> kept;
  for (auto& r : plan.runs)
    if (!r.dataset.empty() && wanted.count(r.dataset)) {
      for (auto& d : r.deps) needed.insert(d);
    }
  for (auto& r : plan.runs)
    if (r.dataset.empty() ? needed.count(r.id) > 0 : wanted.count(r.dataset) > 0)
      kept.push_back(std::move(r));
  plan.runs = std::move(kept);
}

}  // namespace kdx
