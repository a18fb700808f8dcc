// The deployment example: load a model written by `kdx-worker export` and tag text.
//   kdx-tag EXPORT_DIR < text                    one text; one entity per line
//                                                (start, end, type, surface)
//   kdx-tag EXPORT_DIR --batch DOCS [--out F]    every document of DOCS (RuNNE jsonl, brat zip
//                                                or folder, plain text) in batches; predictions
//                                                as RuNNE lines (or brat .ann files), then one
//                                                line of throughput statistics on stderr
//   kdx-tag EXPORT_DIR --batch DOCS --logits-out F.safetensors [--logits-windows N]
//                                                also writes the first N windows' inputs and
//                                                logits: the reference tools/onnx-export --check
//                                                compares ONNX Runtime with
//   --decoding greedy|viterbi                    overrides the run's decoding recorded in
//                                                encoding.json (greedy when absent)
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "workers/data/document.h"
#include "workers/data/json_fields.h"
#include "workers/data/readers.h"
#include "workers/data/writers.h"
#include "workers/evaluation/predict.h"
#include "workers/training/export.h"
#include "workers/worker_cli.h"

namespace {

int tag_one(kdx::training::ExportedModel& model) {
  std::stringstream in;
  in << std::cin.rdbuf();
  auto text = kdx::data::decode_utf8(in.str(), "stdin");
  for (auto& e : kdx::training::tag_text(model, text)) {
    auto surface = text.substr(static_cast<size_t>(e.start), static_cast<size_t>(e.end - e.start));
    for (auto& c : surface)
      if (c == U'\n' || c == U'\t') c = U' ';  // one entity per line, whatever it spans
    std::cout << e.start << "\t" << e.end << "\t" << e.type << "\t"
              << kdx::data::encode_utf8(surface) << "\n";
  }
  return 0;
}

struct BatchOptions {
  std::string docs, out, format, stats = "text", logits_out;
  int batch_size = 32, logits_windows = 64;
};

int tag_batch(kdx::training::ExportedModel& model, const std::string& export_dir,
              const BatchOptions& o) {
  std::string format = o.format;
  if (format.empty()) {
    std::string path = export_dir + "/encoding.json";
    auto e = kdx::read_json_file(path);
    format = kdx::data::JsonFields(e, path).string("format", "runne");
  }
  if (format != "runne" && format != "rurebus")
    throw kdx::Error("--format: '" + format + "' is not runne or rurebus");
  if (format != "runne" && o.out.empty())
    throw kdx::Error("--out DIR is required for brat (.ann) predictions");
  // Timed from reading the documents to the predictions written: what a deployment pays per
  // file (the model is loaded once, before).
  auto t0 = std::chrono::steady_clock::now();
  auto docs = kdx::data::read_texts(o.docs);
  auto enc = kdx::data::encode_dataset(docs, *model.tokenizer, model.scheme, model.window);
  if (model.tagger->word_rows() > 0) kdx::data::assign_word_rows(enc, model.words);
  if (!o.logits_out.empty()) {
    // Before tagging, and outside the timed throughput: a reference for other runtimes.
    int n = kdx::evaluation::write_reference_logits(
        *model.tagger, enc, model.tokenizer->vocab().pad(), o.logits_windows, model.window,
        o.batch_size, o.logits_out);
    std::cerr << "kdx-tag: " << n << " windows' inputs and logits written to " << o.logits_out
              << "\n";
    t0 = std::chrono::steady_clock::now();
  }
  auto pred = kdx::evaluation::predict(*model.tagger, enc, model.tokenizer->vocab().pad(),
                                       o.batch_size, torch::kCPU, model.decoder);
  for (size_t i = 0; i < pred.size(); ++i) pred[i].text = docs[i].text;
  if (!o.out.empty()) {
    kdx::data::write_predictions(format, pred, o.out);
  } else {
    for (auto& d : pred) {
      nlohmann::json ners = nlohmann::json::array();
      for (auto& e : d.entities) ners.push_back({e.start, e.end - 1, e.type});
      std::cout << nlohmann::json{{"id", d.id}, {"ners", ners}}.dump() << "\n";
    }
    std::cout.flush();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long entities = 0;
  for (auto& d : pred) entities += static_cast<long>(d.entities.size());
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const double n = static_cast<double>(docs.size()),
               tokens = static_cast<double>(enc.total_tokens()), rss = ru.ru_maxrss / 1024.0;
  if (o.stats == "json") {
    std::cerr << nlohmann::json{{"documents", docs.size()},
                                {"tokens", enc.total_tokens()},
                                {"entities", entities},
                                {"seconds", s},
                                {"documents_per_s", n / s},
                                {"tokens_per_s", tokens / s},
                                {"threads", torch::get_num_threads()},
                                {"peak_rss_mib", rss}}
                     .dump()
              << "\n";
  } else if (o.stats == "text") {
    std::cerr << "kdx-tag: " << docs.size() << " documents, " << enc.total_tokens() << " tokens, "
              << entities << " entities in " << s << " s: " << n / s << " documents/s, "
              << tokens / s << " tokens/s (" << torch::get_num_threads()
              << (torch::get_num_threads() == 1 ? " thread" : " threads") << ", peak RSS " << rss
              << " MiB)\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Tag text with a model written by `kdx-worker export`.\n"
      "  kdx-tag EXPORT_DIR < text.txt             entities of one text: start end type surface\n"
      "  kdx-tag EXPORT_DIR --batch test.jsonl     every document, as RuNNE prediction lines"};
  app.footer(kdx::kInferenceEnvironmentHelp);
  std::string export_dir;
  BatchOptions o;
  int threads = 0;
  std::string decoding;
  app.add_option("export_dir", export_dir, "the exported model directory")->required();
  app.add_option("--batch", o.docs,
                 "tag every document of this file or folder (RuNNE .jsonl, brat .zip or folder, "
                 "plain text)");
  app.add_option("--out", o.out,
                 "--batch: write predictions here (RuNNE: a .jsonl file; RuREBus: a folder of .ann "
                 "files) instead of standard output");
  app.add_option("--format", o.format,
                 "--batch: prediction format, runne or rurebus (default: the training data's)");
  app.add_option("--batch-size", o.batch_size, "--batch: windows per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--logits-out", o.logits_out,
                 "--batch: also write the first --logits-windows windows' inputs (ids, mask, "
                 "words) and the model's logits to this safetensors file, each padded to the "
                 "model's window (a reference for tools/onnx-export --check)");
  app.add_option("--logits-windows", o.logits_windows, "--logits-out: how many windows")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--threads", threads, "intra-op threads (default: LibTorch's, all cores)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--stats", o.stats, "--batch: throughput line on stderr: text, json or none")
      ->check(CLI::IsMember({"text", "json", "none"}));
  app.add_option("--decoding", decoding,
                 "logits to tags: greedy (argmax per token and type) or viterbi (the best valid "
                 "tag sequence, entities on word boundaries); default: the run's params.decoding "
                 "from encoding.json, greedy when it has none")
      ->check(CLI::IsMember({"greedy", "viterbi"}));
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) torch::set_num_threads(threads);
    auto model = kdx::training::load_exported(export_dir);
    if (!decoding.empty()) model.decoder = kdx::decoding::parse_decoder(decoding);
    return o.docs.empty() ? tag_one(model) : tag_batch(model, export_dir, o);
  } catch (const std::exception& e) {
    std::cerr << "kdx-tag: error: " << e.what() << "\n";
    return 1;
  }
}
