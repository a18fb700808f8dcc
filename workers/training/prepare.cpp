#include "workers/training/prepare.h"

#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "workers/data/readers.h"

namespace kdx::training {

namespace {

std::string file_list(const std::vector<std::string>& files) {
  return join(files, ", ");
}

// What the readers could not check: entities of a split read with no type list (a dataset
// whose training data holds no entity at all). Named by document id: no line is known here.
void check_types(const std::vector<data::Document>& docs, const std::set<std::string>& classes,
                 const std::vector<std::string>& files) {
  for (auto& d : docs)
    for (auto& e : d.entities)
      if (!classes.count(e.type))
        throw Error(file_list(files) + ": document " + d.id + ": unknown entity type '" + e.type +
                    "' (" +
                    (classes.empty() ? std::string("the training data has no entity types")
                                     : "known: " + data::known_types(classes)) +
                    ")");
}

std::vector<data::Document> read_split(const RunSpec& spec, const std::string& split,
                                       const std::set<std::string>& classes) {
  const auto& files = spec.files.at(split);
  if (files.empty()) throw Error(spec.path + ": field \"dataset." + split + "\" lists no files");
  auto docs = data::read_dataset(spec.format, files, classes);
  // Training data without known classes is what defines them (dataset_types).
  if (classes.empty() && split != "train") check_types(docs, classes, files);
  return docs;
}

// Whether the run's training decides anything on the dev split: early stopping
// (patience > 0) or the plateau schedule. Without either, dev F1 only picks the best epoch,
// and a run without dev documents keeps its last one.
std::string dev_use(const RunSpec& spec) {
  if (spec.stage != "teacher" && spec.stage != "student" && spec.stage != "student_kd" &&
      spec.stage != "student_finetune")
    return "";
  int patience = spec.params.value("patience", 0);
  if (patience > 0)
    return "params.patience " + std::to_string(patience) + " stops training early on dev F1";
  if (spec.params.value("lr_schedule", std::string("linear")) == "plateau")
    return "params.lr_schedule plateau lowers the learning rate on dev F1";
  return "";
}

}  // namespace

void read_documents(const RunSpec& spec, Prepared& p) {
  const auto& train_files = spec.files.at("train");
  // The classes, when the caller knows them (a teacher's types.json): every entity of every
  // split must be one of them. Else the dataset's definition (ners.txt, the RuREBus eight)
  // checks the training data, and the classes found there check dev and test.
  std::set<std::string> classes(p.types.begin(), p.types.end());
  auto all = read_split(spec, "train", classes);
  const size_t available = all.size();
  int max_train = spec.params.value("max_train_docs", 0);
  if (max_train > 0 && static_cast<int>(all.size()) > max_train)
    all.resize(static_cast<size_t>(max_train));
  if (all.empty()) throw Error(file_list(train_files) + ": the training split has no documents");
  if (p.types.empty()) {
    p.types = dataset_types(spec, all);
    classes = {p.types.begin(), p.types.end()};
  }
  const size_t n = all.size();
  if (spec.files.count("dev")) {
    // An explicit dev split: every training document trains.
    p.train_docs = std::move(all);
    p.dev_docs = read_split(spec, "dev", classes);
    if (p.dev_docs.empty())
      throw Error(file_list(spec.files.at("dev")) + ": the dev split has no documents");
  } else {
    for (size_t i = 0; i < n; ++i) {
      // Every tenth document is the dev hold-out: fixed by position, so all stages agree.
      if (n >= 10 && i % 10 == 9)
        p.dev_docs.push_back(std::move(all[i]));
      else
        p.train_docs.push_back(std::move(all[i]));
    }
    std::string use = dev_use(spec);
    bool limited = available > n;
    if (p.dev_docs.empty() && !use.empty())
      throw Error(spec.path + ": " + std::to_string(n) + " training documents" +
                  (limited ? " (params.max_train_docs " + std::to_string(max_train) + " of " +
                                 std::to_string(available) + ")"
                           : "") +
                  " in " + file_list(train_files) +
                  " are too few for a dev split: the dev hold-out is every 10th training "
                  "document, so it needs at least 10, and " +
                  use + "; add training documents" +
                  (limited ? " (raise params.max_train_docs)" : "") +
                  " or give the dataset a dev file (dev: in its datasets entry)");
    if (p.dev_docs.empty() && spec.stage != "logits")
      spdlog::warn(
          "no dev documents ({} training documents, the dev hold-out needs at least 10): "
          "no held-out score, the last epoch's weights are kept",
          n);
  }
  for (auto& f : spec.unlabeled)
    for (auto& d : data::read_texts(f)) p.unlabeled_docs.push_back(std::move(d));
  if (spec.files.count("test")) {
    p.test_docs = read_split(spec, "test", classes);
    // A test split that exists but holds nothing would end the run without an F1.
    if (p.test_docs.empty())
      throw Error(file_list(spec.files.at("test")) + ": the test split has no documents");
    int max_test = spec.params.value("max_test_docs", 0);
    if (max_test > 0 && static_cast<int>(p.test_docs.size()) > max_test)
      p.test_docs.resize(static_cast<size_t>(max_test));
  }
}

std::vector<std::string> dataset_types(const RunSpec& spec,
                                       const std::vector<data::Document>& train) {
  if (spec.format == "runne") {
    auto t = data::runne_types_near(spec.files.at("train").front());
    if (!t.empty()) return {t.begin(), t.end()};
  }
  if (spec.format == "rurebus") {
    auto& t = data::rurebus_types();
    return {t.begin(), t.end()};
  }
  return data::types_of(train);
}

void encode_all(const RunSpec& spec, Prepared& p) {
  int window = spec.param_int("window");
  p.train = data::encode_dataset(p.train_docs, *p.tokenizer, p.scheme, window);
  data::append_unlabelled(p.train, p.unlabeled_docs, *p.tokenizer, window);
  p.dev = data::encode_dataset(p.dev_docs, *p.tokenizer, p.scheme, window);
  spdlog::info(
      "data: {} training documents ({} windows, {} of them unlabelled), {} dev, {} test",
      p.train_docs.size(), p.train.examples.size(),
      p.train.examples.size() -
          [&] {
            size_t n = 0;
            for (auto& ex : p.train.examples) n += ex.labelled;
            return n;
          }(),
      p.dev_docs.size(), p.test_docs.size());
  p.test = data::encode_dataset(p.test_docs, *p.tokenizer, p.scheme, window);
}

void save_tokenizer(const data::Tokenizer& tok, const std::string& dir) {
  data::save_vocab(tok.vocab(), dir + "/vocab.txt");
  nlohmann::json cfg = {{"do_lower_case", tok.options().lowercase},
                        {"tokenize_chinese_chars", tok.options().tokenize_chinese_chars},
                        {"tokenizer_class", "BertTokenizer"}};
  if (tok.options().strip_accents != -1) cfg["strip_accents"] = tok.options().strip_accents == 1;
  write_file_atomic(dir + "/tokenizer_config.json", cfg.dump(2) + "\n");
}

std::unique_ptr<data::Tokenizer> load_tokenizer(const std::string& dir) {
  return std::make_unique<data::Tokenizer>(data::load_vocab(dir + "/vocab.txt"),
                                           data::tokenizer_options_from_dir(dir));
}

std::string logits_key(const RunSpec& spec, const std::string& teacher_dir) {
  std::string material = "kdx-logits-v1\n";
  material += sha256_file_hex(teacher_dir + "/model.safetensors") + "\n";
  material += sha256_file_hex(teacher_dir + "/vocab.txt") + "\n";
  material += read_input(teacher_dir + "/tokenizer_config.json", InputKind::Data) + "\n";
  // An ensemble: every other member's weights too (a single teacher's key is unchanged).
  for (size_t i = 1; i < spec.teacher_dirs.size(); ++i)
    material += "member " + sha256_file_hex(spec.teacher_dirs[i] + "/model.safetensors") + "\n";
  for (auto& f : spec.files.at("train")) material += sha256_file_hex(f) + "\n";
  // Unlabelled text changes the cache (its windows follow the labelled ones); a cache
  // without it keeps the key of kdx 0.1.
  for (auto& f : spec.unlabeled) material += "unlabeled " + sha256_file_hex(f) + "\n";
  // An explicit dev split changes the training documents (none is held out); without one
  // the key is kdx 0.3's.
  if (spec.files.count("dev"))
    for (auto& f : spec.files.at("dev")) material += "dev " + sha256_file_hex(f) + "\n";
  material += spec.params.value("tagging", std::string()) + "\n";
  material += std::to_string(spec.params.value("window", 0)) + "\n";
  material += std::to_string(spec.params.value("max_train_docs", 0)) + "\n";
  return sha256_hex(material);
}

}  // namespace kdx::training
