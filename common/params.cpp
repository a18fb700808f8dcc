#include "common/params.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/strings.h"

namespace kdx {
namespace {

using P = ParamType;

std::vector<ParamDef> training_params() {
  return {
      {"epochs", P::Int, {}, {}, "passes over the training set", 1, 100000},
      {"batch_size",
       P::Int,
       {},
       {},
       "sequences per optimizer step (global, over all ranks)",
       1,
       65536},
      {"lr", P::Float, {}, {}, "AdamW peak learning rate", 1e-12, 10},
      {"weight_decay", P::Float, {}, {}, "AdamW weight decay", 0, 10},
      {"warmup_steps", P::Int, {}, {}, "linear warm-up steps, then linear decay", 0, 1000000000.0},
      {"grad_clip", P::Float, {}, {}, "gradient norm clip, 0 = off", 0, 1000000.0},
      {"patience",
       P::Int,
       {},
       {},
       "early stopping: epochs without dev improvement (at dev F1 0: twice as many, at least 6)",
       0,
       100000},
      {"lr_schedule",
       P::String,
       {"linear", "constant", "plateau"},
       {},
       "after warm-up: linear decay to 0, constant, or halved on a dev plateau"},
      {"plateau_factor", P::Float, {}, {}, "plateau: factor on the learning rate", 1e-6, 1},
      {"plateau_patience",
       P::Int,
       {},
       {},
       "plateau: epochs without dev gain tolerated before a cut",
       0,
       100000},
      {"min_lr", P::Float, {}, {}, "plateau: the learning rate's floor", 0, 10},
      {"freeze_embedding_epochs",
       P::Int,
       {},
       {},
       "students: keep the embedding table fixed for the first N epochs",
       0,
       100000},
      {"sampler",
       P::String,
       {"shuffle", "entity_balanced"},
       {},
       "epoch order: every window shuffled, or draws balanced over entity types"},
      {"sampler_draws",
       P::Int,
       {},
       {},
       "entity_balanced: windows drawn per epoch (0 = as many as labelled windows)",
       0,
       1e9},
      {"seed", P::Int, {}, {}, "seed of every RNG of the run", 0, 4e+18},
      {"window", P::Int, {}, {}, "max tokens per window", 8, 4096},
      {"tagging",
       P::String,
       {"per_type_bio", "per_type_bilou", "flat_bio"},
       {},
       "nested-entity encoding"},
      {"decoding",
       P::String,
       {"greedy", "viterbi"},
       {},
       "dev/test logits to tags: greedy = argmax (absent = greedy); viterbi = entities on word "
       "boundaries"},
      {"max_train_docs",
       P::Int,
       {},
       {},
       "use only the first N training documents (0 = all)",
       0,
       1000000000.0},
      {"max_test_docs",
       P::Int,
       {},
       {},
       "evaluate on the first N test documents (0 = all)",
       0,
       1000000000.0},
      {"checkpoint_every", P::Int, {}, {}, "steps between checkpoints", 0, 1000000000.0},
      {"threads", P::Int, {}, {}, "intra-op threads per rank (0 = all cores)", 0, 1024},
      {"ranks", P::Int, {}, {}, "data-parallel ranks (processes)", 1, 4096},
      {"device",
       P::String,
       {"auto", "cpu", "cuda"},
       {},
       "where the run computes: auto = the rank's GPU when the build and the node have one"},
      {"amp",
       P::String,
       {"auto", "none", "bf16", "fp16"},
       {},
       "mixed precision: auto = bf16 on a GPU that has it (fp16 on older ones), none on a CPU"},
  };
}

// Pretrained word vectors as an input of a teacher or student.
ParamDef vectors_param() {
  return {"vectors",
          P::Object,
          {},
          {
              {"file",
               P::String,
               {},
               {},
               "navec (the tar `kdx data fetch navec` keeps in ~/.cache/kdx) or a vectors file"},
              {"format", P::String, {"navec", "text"}, {}, "navec tar, or word2vec/fastText text"},
              {"freeze", P::Bool, {}, {}, "keep the pretrained rows fixed (absent = true)"},
              {"join",
               P::String,
               {"concat", "sum"},
               {},
               "concat: [wordpiece embedding; vector]; sum: the vector projected and added"},
          },
          "pretrained word vectors: each wordpiece gets its word's vector (absent = none)"};
}

// The recurrent tagger's shape: students, and teachers of arch lstm | sru | srupp.
std::vector<ParamDef> recurrent_params() {
  return {
      {"emb", P::Int, {}, {}, "embedding size", 1, 16384},
      {"proj", P::Int, {}, {}, "SRU++ attention projection size", 0, 16384},
      {"highway_bias", P::Float, {}, {}, "SRU/SRU++: initial reset-gate bias", -100, 100},
      {"rescale", P::Bool, {}, {}, "SRU/SRU++: scale the highway input (reference option)"},
      {"forget_bias",
       P::Float,
       {},
       {},
       "LSTM: initial forget-gate bias (absent = PyTorch's uniform init, about 0)",
       -100,
       100},
      {"residual",
       P::Bool,
       {},
       {},
       "LSTM: each layer after the first adds its input to its output (default true)"},
      {"attention_dropout",
       P::Float,
       {},
       {},
       "SRU++: dropout on the attention weights (absent = 0)",
       0,
       0.99},
      {"conv",
       P::Object,
       {},
       {
           {"kernels",
            P::IntList,
            {},
            {},
            "odd Conv1d widths of every conv layer, e.g. [1, 3, 5]",
            1,
            63},
           {"channels",
            P::IntList,
            {},
            {},
            "per conv layer, its output channels (split equally over the kernels)",
            1,
            65536},
           {"dropout", P::Float, {}, {}, "dropout after each conv layer's BatchNorm", 0, 0.99},
       },
       "convolutional front-end before the recurrent layers (absent = none)"},
      vectors_param(),
  };
}

}  // namespace

const std::vector<ParamDef>& teacher_params() {
  static const std::vector<ParamDef> defs = [] {
    std::vector<ParamDef> d = {
        {"arch",
         P::String,
         {"bert", "lstm", "sru", "srupp"},
         {},
         "teacher architecture: BERT, or a recurrent tagger (emb, hidden, layers, conv, vectors)"},
        {"init_from", P::String, {}, {}, "Hugging Face BERT checkpoint directory to fine-tune"},
        {"layers", P::Int, {}, {}, "encoder layers (recurrent: recurrent layers)", 1, 96},
        {"hidden", P::Int, {}, {}, "hidden size (recurrent: per direction)", 1, 16384},
        {"heads", P::Int, {}, {}, "attention heads", 1, 256},
        {"ffn", P::Int, {}, {}, "feed-forward size", 1, 65536},
        {"vocab_size", P::Int, {}, {}, "vocabulary built from the training corpus", 16, 1e7},
        {"lowercase", P::Bool, {}, {}, "lower-case and strip accents before WordPiece"},
        {"init_range",
         P::Float,
         {},
         {},
         "std of the initial weights (from scratch; BERT: 0.02)",
         1e-6,
         10},
        {"dropout", P::Float, {}, {}, "dropout probability", 0, 0.99},
        {"ensemble_seeds",
         P::IntList,
         {},
         {},
         "an ensemble: one teacher per seed, whose logits the logits stage combines",
         0,
         4e+18},
        {"loss",
         P::Object,
         {},
         {
             {"ce_weight", P::Float, {}, {}, "weight of CE(tags, gold)", 0, 1e6},
             {"dice_weight", P::Float, {}, {}, "weight of the Dice loss over gold tags", 0, 1e6},
             {"label_smoothing", P::Float, {}, {}, "label smoothing of CE", 0, 0.99},
         },
         "supervised loss weights"},
    };
    for (auto& t : recurrent_params()) d.push_back(t);
    for (auto& t : training_params()) d.push_back(t);
    return d;
  }();
  return defs;
}

const std::vector<ParamDef>& student_params() {
  static const std::vector<ParamDef> defs = [] {
    std::vector<ParamDef> d = {
        {"arch", P::String, {"lstm", "sru", "srupp"}, {}, "student architecture"},
        {"hidden", P::Int, {}, {}, "recurrent hidden size (per direction)", 1, 16384},
        {"layers", P::Int, {}, {}, "recurrent layers", 1, 64},
        {"dropout", P::Float, {}, {}, "dropout probability", 0, 0.99},
        {"init_embedding",
         P::Bool,
         {},
         {},
         "initialise embeddings from the teacher's (top principal components when emb is "
         "smaller)"},
        {"vocab",
         P::String,
         {"trimmed", "full"},
         {},
         "embedding rows: only the teacher wordpieces in the training text, or all"},
        {"dataset", P::String, {}, {}, "dataset name (from `datasets:`)"},
        {"loss",
         P::Object,
         {},
         {
             {"ce_weight", P::Float, {}, {}, "weight of CE(student tags, gold)", 0, 1e6},
             {"kd_weight", P::Float, {}, {}, "weight of the distillation term; 0 = no KD", 0, 1e6},
             {"kd_loss",
              P::String,
              {"kl", "mse", "mse_prob", "hard"},
              {},
              "kl: KL at temperature; mse: logits (paper); mse_prob: tag probabilities; hard: CE "
              "on the teacher's argmax tags (the self-training control)"},
             {"temperature", P::Float, {}, {}, "temperature of kl and mse_prob", 0.01, 1000},
             {"dice_weight", P::Float, {}, {}, "weight of the Dice loss over gold tags", 0, 1e6},
             {"label_smoothing", P::Float, {}, {}, "label smoothing of CE", 0, 0.99},
             {"combine",
              P::String,
              {"mean_logits", "mean_probs"},
              {},
              "teacher ensembles: which combination of the members this KD student learns "
              "from (default: logits.combine); each rule in use is one logits run"},
         },
         "loss weights"},
    };
    for (auto& t : recurrent_params()) d.push_back(t);
    for (auto& t : training_params()) d.push_back(t);
    // Two-phase distillation: the settings of phase 1 (student_kd, on the transfer corpus
    // from the teacher alone); the rest of the point is phase 2 (student_finetune).
    std::vector<ParamDef> phase = {
        {"kd_loss", P::String, {"kl", "mse", "mse_prob"}, {}, "phase 1's KD term (default mse)"},
        {"temperature", P::Float, {}, {}, "temperature of kl and mse_prob", 0.01, 1000},
    };
    for (auto& t : training_params())
      for (auto name : {"epochs", "batch_size", "lr", "weight_decay", "warmup_steps", "grad_clip",
                        "patience", "lr_schedule", "plateau_factor", "plateau_patience", "min_lr",
                        "freeze_embedding_epochs", "seed", "checkpoint_every", "threads"})
        if (t.name == name) phase.push_back(t);
    d.push_back({"two_phase",
                 P::Object,
                 {},
                 phase,
                 "two-phase distillation: phase 1's overrides (student_kd on the transfer corpus); "
                 "the point itself is phase 2 (student_finetune, supervised)"});
    return d;
  }();
  return defs;
}

const std::vector<ParamDef>& pretrain_params() {
  static const std::vector<ParamDef> defs = [] {
    std::vector<ParamDef> d = {
        {"init_from",
         P::String,
         {},
         {},
         "Hugging Face BERT to continue pretraining (domain-adaptive)"},
        {"layers", P::Int, {}, {}, "encoder layers (from scratch)", 1, 96},
        {"hidden", P::Int, {}, {}, "hidden size (from scratch)", 1, 16384},
        {"heads", P::Int, {}, {}, "attention heads (from scratch)", 1, 256},
        {"ffn", P::Int, {}, {}, "feed-forward size (from scratch)", 1, 65536},
        {"vocab_size",
         P::Int,
         {},
         {},
         "WordPiece vocabulary built from the corpus (from scratch)",
         16,
         1e7},
        {"lowercase", P::Bool, {}, {}, "lower-case and strip accents before WordPiece"},
        {"init_range",
         P::Float,
         {},
         {},
         "std of the initial weights (from scratch; BERT: 0.02)",
         1e-6,
         10},
        {"dropout", P::Float, {}, {}, "dropout probability", 0, 0.99},
        {"mask_prob", P::Float, {}, {}, "fraction of tokens predicted (BERT: 0.15)", 0.001, 0.999},
        {"whole_word_mask", P::Bool, {}, {}, "mask all pieces of a chosen word"},
        {"heldout_every",
         P::Int,
         {},
         {},
         "every N-th corpus document is held out (accuracy)",
         0,
         1e9},
    };
    for (auto& t : training_params())
      if (t.name != "tagging" && t.name != "decoding" && t.name != "max_train_docs" &&
          t.name != "max_test_docs" && t.name != "sampler" && t.name != "sampler_draws" &&
          t.name != "freeze_embedding_epochs")
        d.push_back(t);
    return d;
  }();
  return defs;
}

const std::vector<ParamDef>& logits_params() {
  static const std::vector<ParamDef> defs = {
      {"precision", P::String, {"fp16", "fp32"}, {}, "stored logits precision"},
      {"source",
       P::String,
       {"teacher", "oracle"},
       {},
       "teacher: the trained teacher's logits; oracle: made from the gold tags (a control)"},
      {"oracle_margin",
       P::Float,
       {},
       {},
       "oracle: +margin for the chosen class, -margin else",
       0,
       1000},
      {"oracle_noise", P::Float, {}, {}, "oracle: fraction of cells given a wrong class", 0, 1},
      {"combine",
       P::String,
       {"mean_logits", "mean_probs"},
       {},
       "teacher ensembles: average the members' logits (TextBrewer's default) or their tag "
       "probabilities (stored as log-probabilities); the rule of KD students that name no "
       "loss.combine"},
      {"seed", P::Int, {}, {}, "oracle: seed of the noise", 0, 4e+18},
      {"threads", P::Int, {}, {}, "intra-op threads", 0, 1024},
      {"device",
       P::String,
       {"auto", "cpu", "cuda"},
       {},
       "where the teacher runs (auto: a GPU if any)"},
      {"amp", P::String, {"auto", "none", "bf16", "fp16"}, {}, "teacher inference precision"},
  };
  return defs;
}

const std::vector<ParamDef>& resource_params() {
  static const std::vector<ParamDef> defs = {
      {"nodes", P::Int, {}, {}, "nodes per run (one rank per GPU across them)", 1, 100000},
      {"gpus_per_node", P::Int, {}, {}, "GPUs per node (0: a CPU run)", 0, 64},
      {"cpus", P::Int, {}, {}, "CPUs per task", 1, 4096},
      // Below 64M not even the worker's libraries load; above 64T no node exists. Slurm's
      // --mem=0 ("all of a node") is refused: a run's needs should be written down.
      {"mem", P::Memory, {}, {}, "memory per node (500M, 4G, 1T)", 64, 64.0 * 1024 * 1024},
      {"time", P::Duration, {}, {}, "time limit (MM, HH:MM:SS, D-HH:MM:SS)", 1, 365.0 * 86400},
      {"partition", P::String, {}, {}, "Slurm partition"},
      {"account", P::String, {}, {}, "Slurm account"},
      {"qos", P::String, {}, {}, "Slurm QOS"},
      {"array_throttle",
       P::Int,
       {},
       {},
       "at most this many array tasks at once (0: no limit)",
       0,
       1000000},
  };
  return defs;
}

namespace {

// Digits only, accumulated without wrapping: -1 when empty or not digits, -2 when above
// `max` (however many digits).
long long checked_digits(const std::string& s, long long max) {
  if (s.empty()) return -1;
  long long v = 0;
  bool over = false;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    if (!over) v = v * 10 + (c - '0');
    over = over || v > max;
  }
  return over ? -2 : v;
}

}  // namespace

long long parse_time_limit(const std::string& s) {
  // Fields above 1e12 are "too large" before any arithmetic, so the sum cannot wrap.
  constexpr long long kMaxField = 1000000000000LL;
  std::string rest = s;
  long long days = 0;
  bool has_days = false;
  auto dash = s.find('-');
  if (dash != std::string::npos) {
    days = checked_digits(s.substr(0, dash), kMaxField);
    if (days < 0) return days;
    rest = s.substr(dash + 1);
    has_days = true;
  }
  auto parts = split(rest, ':');
  if (parts.empty() || parts.size() > 3) return -1;
  long long v[3] = {0, 0, 0};
  bool over = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    v[i] = checked_digits(parts[i], kMaxField);
    if (v[i] == -1) return -1;
    over = over || v[i] == -2;
  }
  if (over) return -2;
  long long secs;
  if (has_days)  // D-HH, D-HH:MM, D-HH:MM:SS
    secs = v[0] * 3600 + (parts.size() > 1 ? v[1] * 60 : 0) + (parts.size() > 2 ? v[2] : 0);
  else if (parts.size() == 1)  // MM
    secs = v[0] * 60;
  else if (parts.size() == 2)  // MM:SS
    secs = v[0] * 60 + v[1];
  else  // HH:MM:SS
    secs = v[0] * 3600 + v[1] * 60 + v[2];
  return days * 86400 + secs;
}

long long parse_mem_mb(const std::string& s) {
  if (s.empty()) return -1;
  std::string num = s;
  long long mult = 1;  // MB per unit; K is rounded up below
  bool kilo = false;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (last < '0' || last > '9') {
    num.pop_back();
    if (last == 'K')
      kilo = true;
    else if (last == 'M')
      mult = 1;
    else if (last == 'G')
      mult = 1024;
    else if (last == 'T')
      mult = 1024 * 1024;
    else
      return -1;
  }
  long long n = checked_digits(num, 1000000000000LL);
  if (n < 0) return n;
  if (kilo) return (n + 1023) / 1024;
  return n * mult;  // at most 1e12 * 2^20 < 2^63
}

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names = {"pretrain",   "teacher",          "logits",
                                                 "student_kd", "student_finetune", "student"};
  return names;
}

bool is_student_stage(const std::string& stage) {
  return stage == "student" || stage == "student_kd" || stage == "student_finetune";
}

const std::vector<ParamDef>& params_of_stage(const std::string& stage) {
  if (stage == "teacher") return teacher_params();
  if (is_student_stage(stage)) return student_params();
  if (stage == "logits") return logits_params();
  if (stage == "pretrain") return pretrain_params();
  throw Error("unknown stage '" + stage + "'");
}

void validate_params(const std::vector<ParamDef>& defs, const nlohmann::json& params,
                     const std::string& where) {
  if (!params.is_object()) throw Error(where + ": params must be an object");
  for (auto& [key, value] : params.items()) {
    const ParamDef* d = nullptr;
    for (auto& def : defs)
      if (def.name == key) d = &def;
    if (!d)
      throw Error(where + ": params." + key +
                  ": unknown parameter (expected one of: " + known_names(defs) + ")");
    auto err = check_param(*d, value);
    if (!err.empty()) throw Error(where + ": params." + key + ": " + err);
  }
}

const ParamDef* find_param(const std::vector<ParamDef>& defs, const std::string& dotted) {
  auto parts = split(dotted, '.');
  const std::vector<ParamDef>* level = &defs;
  const ParamDef* found = nullptr;
  for (auto& part : parts) {
    found = nullptr;
    if (!level) return nullptr;
    for (auto& d : *level)
      if (d.name == part) found = &d;
    if (!found) return nullptr;
    level = found->type == ParamType::Object ? &found->fields : nullptr;
  }
  return found;
}

std::string type_name(ParamType t) {
  switch (t) {
    case ParamType::Int:
      return "an integer";
    case ParamType::Float:
      return "a number";
    case ParamType::Bool:
      return "true or false";
    case ParamType::String:
      return "a string";
    case ParamType::Object:
      return "a mapping";
    case ParamType::IntList:
      return "a list of integers";
    case ParamType::Duration:
      return "a time limit (MM, HH:MM:SS, D-HH:MM:SS)";
    case ParamType::Memory:
      return "a memory size (500M, 4G)";
  }
  return "?";
}

namespace {

std::string describe(const nlohmann::json& v) {
  if (v.is_array()) return "a list";
  if (v.is_object()) return "a mapping";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_null()) return "null";
  return "a string";
}

}  // namespace

std::string format_duration_limit(long long secs) {
  char buf[64];
  if (secs < 86400)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", secs / 3600, secs / 60 % 60, secs % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:%02lld", secs / 86400, secs / 3600 % 24,
                  secs / 60 % 60, secs % 60);
  return buf;
}

std::string format_mem_mb(long long mb) {
  if (mb % (1024 * 1024) == 0) return std::to_string(mb / (1024 * 1024)) + "T";
  if (mb % 1024 == 0) return std::to_string(mb / 1024) + "G";
  return std::to_string(mb) + "M";
}

std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.12g", x);
  return buf;
}

std::string check_range(const ParamDef& def, double x, const nlohmann::json& v) {
  if (!std::isfinite(x)) return "must be a finite number, got " + v.dump();
  if (x < def.min || x > def.max)
    return "must be between " + format_number(def.min) + " and " + format_number(def.max) +
           ", got " + v.dump();
  return {};
}

std::string check_param(const ParamDef& def, const nlohmann::json& v) {
  auto wrong = [&] { return "expected " + type_name(def.type) + ", got " + describe(v); };
  switch (def.type) {
    case ParamType::Int:
      if (v.is_number_integer()) return check_range(def, static_cast<double>(v.get<int64_t>()), v);
      if (v.is_number_unsigned())
        return check_range(def, static_cast<double>(v.get<uint64_t>()), v);
      if (v.is_number_float() && std::isfinite(v.get<double>()) &&
          std::floor(v.get<double>()) == v.get<double>())
        return check_range(def, v.get<double>(), v);
      if (v.is_number_float() && !std::isfinite(v.get<double>()))
        return "must be a finite number, got " + v.dump();
      return wrong();
    case ParamType::Float:
      return v.is_number() ? check_range(def, v.get<double>(), v) : wrong();
    case ParamType::Bool:
      return v.is_boolean() ? std::string() : wrong();
    case ParamType::String:
      if (!v.is_string()) return wrong();
      if (!def.choices.empty()) {
        for (auto& c : def.choices)
          if (c == v.get<std::string>()) return {};
        return "'" + v.get<std::string>() + "' is not one of: " + join(def.choices, ", ");
      }
      return {};
    case ParamType::Object: {
      if (!v.is_object()) return wrong();
      for (auto& [k, sub] : v.items()) {
        const ParamDef* f = nullptr;
        for (auto& d : def.fields)
          if (d.name == k) f = &d;
        if (!f) return "unknown key '" + k + "' (expected one of: " + known_names(def.fields) + ")";
        auto e = check_param(*f, sub);
        if (!e.empty()) return k + (e[0] == '[' ? "" : ": ") + e;
      }
      return {};
    }
    case ParamType::Duration:
    case ParamType::Memory: {
      // YAML's `time: 90` arrives as an integer; Slurm reads it as minutes (MB for mem).
      std::string text = v.is_number_integer() || v.is_number_unsigned() ? v.dump()
                         : v.is_string()                                 ? v.get<std::string>()
                                                                         : std::string();
      if (text.empty()) return wrong();
      bool time = def.type == ParamType::Duration;
      long long x = time ? parse_time_limit(text) : parse_mem_mb(text);
      auto shown = [&](double b) {
        if (time) return format_duration_limit(static_cast<long long>(b));
        return format_mem_mb(static_cast<long long>(b));
      };
      if (x == -2)
        return "must be between " + shown(def.min) + " and " + shown(def.max) + ", got '" + text +
               "' (too large)";
      if (x < 0) return "'" + text + "' is not " + type_name(def.type);
      if (static_cast<double>(x) < def.min || static_cast<double>(x) > def.max)
        return "must be between " + shown(def.min) + " and " + shown(def.max) + ", got '" + text +
               "'";
      return {};
    }
    case ParamType::IntList: {
      if (!v.is_array()) return wrong();
      ParamDef item = def;
      item.type = ParamType::Int;
      for (size_t i = 0; i < v.size(); ++i) {
        auto e = check_param(item, v[i]);
        if (!e.empty()) return "[" + std::to_string(i) + "]: " + e;
      }
      return {};
    }
  }
  return {};
}

std::string known_names(const std::vector<ParamDef>& defs) {
  std::vector<std::string> names;
  for (auto& d : defs) names.push_back(d.name);
  return join(names, ", ");
}

nlohmann::json normalize_numbers(const nlohmann::json& j) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto& [k, v] : j.items()) out[k] = normalize_numbers(v);
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& v : j) out.push_back(normalize_numbers(v));
    return out;
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e15)
      return static_cast<int64_t>(d);
  }
  if (j.is_number_unsigned()) return static_cast<int64_t>(j.get<uint64_t>());
  return j;
}

void deep_merge(nlohmann::json& base, const nlohmann::json& patch) {
  if (!base.is_object() || !patch.is_object()) {
    base = patch;
    return;
  }
  for (auto& [k, v] : patch.items()) {
    if (base.contains(k) && base[k].is_object() && v.is_object())
      deep_merge(base[k], v);
    else
      base[k] = v;
  }
}

const nlohmann::json* get_path(const nlohmann::json& j, const std::string& dotted) {
  const nlohmann::json* cur = &j;
  for (auto& part : split(dotted, '.')) {
    if (!cur->is_object() || !cur->contains(part)) return nullptr;
    cur = &(*cur)[part];
  }
  return cur;
}

void set_path(nlohmann::json& j, const std::string& dotted, const nlohmann::json& value) {
  auto parts = split(dotted, '.');
  nlohmann::json* cur = &j;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!(*cur)[parts[i]].is_object()) (*cur)[parts[i]] = nlohmann::json::object();
    cur = &(*cur)[parts[i]];
  }
  if ((*cur).contains(parts.back()) && (*cur)[parts.back()].is_object() && value.is_object())
    deep_merge((*cur)[parts.back()], value);
  else
    (*cur)[parts.back()] = value;
}

}  // namespace kdx
