#include "workers/training/export.h"

#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "workers/data/encode.h"
#include "workers/data/json_fields.h"
#include "workers/evaluation/predict.h"
#include "workers/models/student.h"
#include "workers/training/artefact_file.h"
#include "workers/training/checkpoint.h"
#include "workers/training/prepare.h"

namespace kdx::training {

void export_model(const std::string& run_dir, const std::string& out) {
  for (auto f : {"model.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                 "types.json", "run.json"}) {
    struct stat st;
    if (::stat((run_dir + "/" + f).c_str(), &st) != 0)
      throw Error(run_dir + ": not a finished run (no " + std::string(f) + ")");
  }
  ::mkdir(out.c_str(), 0755);
  for (auto f :
       {"model.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "types.json"})
    write_artefact(out + "/" + f, read_input(run_dir + "/" + f, InputKind::Weights));
  if (file_exists(run_dir + "/vectors.txt"))
    write_artefact(out + "/vectors.txt", read_input(run_dir + "/vectors.txt", InputKind::Data));
  std::string run_path = run_dir + "/run.json";
  auto run = read_json_file(run_path);
  data::JsonFields r(run, run_path);
  auto params = r.object("params");
  std::string format = r.has("dataset") ? r.object("dataset").string("format", "") : "";
  nlohmann::json enc = {{"tagging", params.string("tagging", "per_type_bio")},
                        {"window", params.integer("window", 128)},
                        {"decoding", params.string("decoding", "greedy")},
                        {"format", format}};
  write_file_atomic(out + "/encoding.json", enc.dump(2) + "\n");
}

ExportedModel load_exported(const std::string& dir) {
  ExportedModel m;
  std::string model_path = dir + "/model.json";
  m.tagger = models::make_tagger(read_json_file(model_path), model_path);
  load_weights(*m.tagger, dir + "/model.safetensors");
  m.tagger->eval();
  if (m.tagger->word_rows() > 0) {
    m.words = data::read_word_list(dir + "/vectors.txt", 0);
    if (m.words.size() != m.tagger->word_rows())
      throw Error(dir + "/vectors.txt: " + std::to_string(m.words.size()) +
                  " rows with the unknown word, but model.json's table has " +
                  std::to_string(m.tagger->word_rows()));
  }
  m.tokenizer = load_tokenizer(dir);
  auto types = data::string_list(read_json_file(dir + "/types.json"), dir + "/types.json");
  std::string enc_path = dir + "/encoding.json";
  auto enc_json = read_json_file(enc_path);
  data::JsonFields enc(enc_json, enc_path);
  m.scheme = data::make_scheme(enc.string("tagging", "per_type_bio"), types);
  m.window = enc.integer("window", 128);
  try {
    m.decoder = decoding::parse_decoder(enc.string("decoding", "greedy"));
  } catch (const Error& e) {
    enc.fail("decoding", e.what());
  }
  return m;
}

std::vector<data::Entity> tag_text(ExportedModel& m, const std::u32string& text) {
  data::Document d{"0", text, {}};
  auto enc = data::encode_dataset({d}, *m.tokenizer, m.scheme, m.window);
  if (m.tagger->word_rows() > 0) data::assign_word_rows(enc, m.words);
  auto docs =
      evaluation::predict(*m.tagger, enc, m.tokenizer->vocab().pad(), 32, torch::kCPU, m.decoder);
  return docs.at(0).entities;
}

}  // namespace kdx::training
