#include "workers/training/prepare.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/log.h"
#include "common/sha256.h"
#include "workers/data/readers.h"

namespace kdx::training {

void read_documents(const RunSpec& spec, Prepared& p) {
  auto all = data::read_dataset(spec.format, spec.files.at("train"));
  int max_train = spec.params.value("max_train_docs", 0);
  if (max_train > 0 && static_cast<int>(all.size()) > max_train)
    all.resize(static_cast<size_t>(max_train));
  if (all.empty()) throw Error(spec.path + ": the training split has no documents");
  for (size_t i = 0; i < all.size(); ++i) {
    // Every tenth document is the dev hold-out: fixed by position, so all stages agree.
    if (all.size() >= 10 && i % 10 == 9)
      p.dev_docs.push_back(std::move(all[i]));
    else
      p.train_docs.push_back(std::move(all[i]));
  }
  for (auto& f : spec.unlabeled)
    for (auto& d : data::read_texts(f)) p.unlabeled_docs.push_back(std::move(d));
  if (spec.files.count("test")) {
    p.test_docs = data::read_dataset(spec.format, spec.files.at("test"));
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
  material += read_file(teacher_dir + "/tokenizer_config.json") + "\n";
  for (auto& f : spec.files.at("train")) material += sha256_file_hex(f) + "\n";
  // Unlabelled text changes the cache (its windows follow the labelled ones); a cache
  // without it keeps the key of kdx 0.1.
  for (auto& f : spec.unlabeled) material += "unlabeled " + sha256_file_hex(f) + "\n";
  material += spec.params.value("tagging", std::string()) + "\n";
  material += std::to_string(spec.params.value("window", 0)) + "\n";
  material += std::to_string(spec.params.value("max_train_docs", 0)) + "\n";
  return sha256_hex(material);
}

}  // namespace kdx::training
