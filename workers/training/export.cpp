#include "workers/training/export.h"

#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_io.h"
#include "workers/data/encode.h"
#include "workers/evaluation/predict.h"
#include "workers/models/student.h"
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
    write_file_atomic(out + "/" + f, read_file(run_dir + "/" + f));
  auto run = read_json_file(run_dir + "/run.json");
  nlohmann::json enc = {{"tagging", run["params"].value("tagging", "per_type_bio")},
                        {"window", run["params"].value("window", 128)},
                        {"decoding", run["params"].value("decoding", "greedy")},
                        {"format", run["dataset"].value("format", "")}};
  write_file_atomic(out + "/encoding.json", enc.dump(2) + "\n");
}

ExportedModel load_exported(const std::string& dir) {
  ExportedModel m;
  auto desc = parse_json(read_file(dir + "/model.json"));
  if (!desc.is_object()) throw Error(dir + "/model.json: not valid JSON");
  m.tagger = models::make_tagger(desc);
  load_weights(*m.tagger, dir + "/model.safetensors");
  m.tagger->eval();
  m.tokenizer = load_tokenizer(dir);
  auto types = read_json_file(dir + "/types.json").get<std::vector<std::string>>();
  auto enc = read_json_file(dir + "/encoding.json");
  m.scheme = data::make_scheme(enc.value("tagging", "per_type_bio"), types);
  m.window = enc.value("window", 128);
  m.decoder = decoding::parse_decoder(enc.value("decoding", "greedy"));
  return m;
}

std::vector<data::Entity> tag_text(ExportedModel& m, const std::u32string& text) {
  data::Document d{"0", text, {}};
  auto enc = data::encode_dataset({d}, *m.tokenizer, m.scheme, m.window);
  auto docs =
      evaluation::predict(*m.tagger, enc, m.tokenizer->vocab().pad(), 32, torch::kCPU, m.decoder);
  return docs.at(0).entities;
}

}  // namespace kdx::training
