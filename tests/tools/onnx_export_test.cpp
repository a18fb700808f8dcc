// tools/onnx-export against kdx's own infer(): a student of every architecture and input
// (trimmed vocabulary, conv front-end, word vectors concatenated and summed, SRU's rescaled
// highway, SRU++'s attention, several layers), with random weights, exported as
// `kdx-worker export` writes it, tagged by kdx-tag over real RuNNE test documents
// (--logits-out), and the ONNX graph run by ONNX Runtime (tools/onnx-env) on the same windows.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "tests/support/test_support.h"
#include "workers/data/readers.h"
#include "workers/data/tagging.h"
#include "workers/data/vocab_builder.h"
#include "workers/data/word_table.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/prepare.h"

namespace kdx {
namespace {

constexpr int kWindow = 64;

std::string onnx_python() {
  auto r = test::run_command({std::string(KDX_SOURCE_DIR) + "/tools/onnx-env"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto path = r.out.substr(0, r.out.find('\n'));
  EXPECT_TRUE(test::file_exists(path)) << "tools/onnx-env printed '" << r.out << "'";
  return path;
}

// The first RuNNE test documents, as a jsonl file of their own.
std::string runne_docs(const test::TempDir& dir, std::vector<data::Document>& docs) {
  std::string data = test::shared_data_dir();
  EXPECT_FALSE(data.empty()) << "no RuNNE copy: set KDX_DATA_DIR";
  std::ifstream in(data + "/runne/test.jsonl");
  std::string line, text;
  for (int i = 0; i < 6 && std::getline(in, line); ++i) text += line + "\n";
  auto path = dir.write("docs.jsonl", text);
  docs = data::read_texts(path);
  EXPECT_EQ(docs.size(), 6u);
  return path;
}

// Weights a trained model could have: nothing left at its initial constant (BatchNorm's
// statistics, SRU's biases, SRU++'s rezero alpha, the word-vector table).
void randomize(models::StudentTaggerImpl& m) {
  torch::NoGradGuard g;
  torch::manual_seed(7);
  for (auto& p : m.named_parameters()) {
    auto& t = p.value();
    if (p.key().find("norm.weight") != std::string::npos)
      t.uniform_(0.5, 1.5);
    else if (p.key().find("alpha") != std::string::npos || p.key().find(".b") != std::string::npos)
      t.uniform_(-0.5, 0.5);
    else if (p.key().find("vectors.table") != std::string::npos)
      t.normal_(0, 0.5);
  }
  for (auto& b : m.named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  if (m.vocab_map.defined())
    m.vocab_map.copy_(torch::randint(0, m.config.vocab_size, m.vocab_map.sizes(), torch::kInt64));
}

// An export directory as `kdx-worker export` writes it, for a student of `config`.
std::string write_export(const test::TempDir& dir, const std::string& name, nlohmann::json config,
                         const std::vector<data::Document>& docs) {
  std::string out = dir.file(name);
  std::filesystem::create_directories(out);
  auto write_json = [&](const std::string& file, const nlohmann::json& j) {
    write_file_atomic(out + "/" + file, j.dump(2) + "\n");
  };
  auto vocab = data::build_vocab(docs, 2000, {});
  data::Tokenizer tok(vocab, {});
  training::save_tokenizer(tok, out);
  std::vector<std::string> types = {"PERSON", "ORGANIZATION", "CITY"};
  auto scheme = data::make_scheme("per_type_bilou", types);
  config["columns"] = scheme.columns();
  config["classes"] = scheme.classes();
  if (config.contains("input_vocab"))
    config["input_vocab"] = static_cast<int>(vocab.size());
  else
    config["vocab_size"] = static_cast<int>(vocab.size());
  if (config.contains("vectors")) {
    data::WordTable table;
    table.dim = config["vectors"]["dim"];
    table.words = {"в", "и", "на", "с", "по", "россии", "года", "президент"};
    data::write_word_list(table, out + "/vectors.txt");
    config["vectors"]["rows"] = table.size();
  }
  auto model =
      std::make_shared<models::StudentTaggerImpl>(models::student_config_from_json(config, name));
  randomize(*model);
  training::save_weights(*model, out + "/model.safetensors");
  write_json("model.json", model->describe());
  write_json("types.json", types);
  write_json("encoding.json", {{"tagging", "per_type_bilou"},
                               {"window", kWindow},
                               {"decoding", "viterbi"},
                               {"format", "runne"}});
  return out;
}

nlohmann::json check(const std::string& python, const std::string& export_dir,
                     const std::string& reference, const std::vector<std::string>& extra,
                     int want_exit) {
  std::vector<std::string> argv = {python,     std::string(KDX_SOURCE_DIR) + "/tools/onnx-export",
                                   export_dir, "--check",
                                   reference,  "--threads",
                                   "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = test::run_command(argv);
  EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
  if (r.out.empty()) return {};
  return nlohmann::json::parse(r.out);
}

std::string reference(const std::string& export_dir, const std::string& docs, int windows) {
  std::string ref = export_dir + "/reference.safetensors";
  auto r = test::run_command({KDX_TAG_BIN, export_dir, "--batch", docs, "--out",
                              export_dir + "/pred.jsonl", "--stats", "none", "--threads", "1",
                              "--logits-out", ref, "--logits-windows", std::to_string(windows)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(std::to_string(windows) + " windows' inputs and logits written"),
            std::string::npos)
      << r.err;
  return ref;
}

TEST(OnnxExport, EveryStudentMatchesKdxOnRuNNEWindows) {
  test::TempDir dir;
  std::vector<data::Document> docs;
  auto docs_path = runne_docs(dir, docs);
  auto python = onnx_python();
  struct Case {
    std::string name;
    nlohmann::json config;
    std::vector<std::string> extra;
  };
  std::vector<Case> cases = {
      {"lstm", {{"arch", "lstm"}, {"emb", 48}, {"hidden", 40}, {"layers", 2}}, {}},
      {"lstm_trimmed_conv_vectors_sum",
       {{"arch", "lstm"},
        {"input_vocab", 0},
        {"vocab_size", 500},
        {"emb", 32},
        {"hidden", 24},
        {"conv", {{"kernels", {1, 3, 5}}, {"channels", {48, 24}}, {"dropout", 0.1}}},
        {"vectors", {{"dim", 16}, {"join", "sum"}, {"freeze", true}}}},
       {}},
      {"sru", {{"arch", "sru"}, {"emb", 40}, {"hidden", 20}, {"layers", 3}}, {}},
      {"sru_rescaled_unrolled",
       {{"arch", "sru"},
        {"emb", 40},
        {"hidden", 20},
        {"layers", 2},
        {"rescale", true},
        {"highway_bias", -2.0}},
       {"--sru", "unrolled"}},
      {"srupp_conv_vectors_concat",
       {{"arch", "srupp"},
        {"emb", 32},
        {"hidden", 24},
        {"layers", 2},
        {"proj", 16},
        {"conv", {{"kernels", {1, 3}}, {"channels", {32}}, {"dropout", 0.0}}},
        {"vectors", {{"dim", 12}, {"join", "concat"}, {"freeze", false}}}},
       {}},
      // Hidden sizes that are multiples of 16: kdx's reference logits come from its fused
      // kernels (recurrent_kernels.h), the others above from its fallback paths.
      {"lstm_fused", {{"arch", "lstm"}, {"emb", 48}, {"hidden", 32}, {"layers", 2}}, {}},
      {"lstm_residual_fused",
       {{"arch", "lstm"}, {"emb", 24}, {"hidden", 16}, {"layers", 3}, {"residual", true}},
       {}},
      {"sru_fused", {{"arch", "sru"}, {"emb", 64}, {"hidden", 32}, {"layers", 2}}, {}},
      {"srupp_fused_conv",
       {{"arch", "srupp"},
        {"emb", 32},
        {"hidden", 16},
        {"layers", 2},
        {"conv", {{"kernels", {1, 3}}, {"channels", {24}}, {"dropout", 0.0}}}},
       {}},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto ex = write_export(dir, c.name, c.config, docs);
    auto ref = reference(ex, docs_path, 40);
    auto got = check(python, ex, ref, c.extra, 0);
    ASSERT_TRUE(got.is_object());
    EXPECT_EQ(got["windows"], 40);
    EXPECT_GT(got["tokens"].get<int>(), 40 * 20);  // real windows, most of them full
    EXPECT_LE(got["max_abs_diff"].get<double>(), 1e-4);
    EXPECT_GT(got["max_abs_logit"].get<double>(), 0.05);  // logits that are not all ~0
    EXPECT_TRUE(test::file_exists(ex + "/model.onnx"));
    std::printf("%s: max |ORT - kdx| %.2g, max |logit| %.2g\n", c.name.c_str(),
                got["max_abs_diff"].get<double>(), got["max_abs_logit"].get<double>());
  }
  // The check fails when graph and reference differ: one model's graph against another
  // model's logits (same inputs, same shapes).
  auto a = dir.file("sru"), b = dir.file("sru_rescaled_unrolled");
  auto wrong = check(python, a, b + "/reference.safetensors", {}, 1);
  ASSERT_TRUE(wrong.is_object());
  EXPECT_FALSE(wrong["ok"].get<bool>());
  EXPECT_GT(wrong["max_abs_diff"].get<double>(), 1e-2);
}

TEST(OnnxExport, RefusesATeacherAndAMissingExport) {
  test::TempDir dir;
  auto python = onnx_python();
  auto tool = std::string(KDX_SOURCE_DIR) + "/tools/onnx-export";
  auto r = test::run_command({python, tool, dir.file("nothing")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir.file("nothing") +
                       ": not an exported model (no model.json; see kdx-worker export)"),
            std::string::npos)
      << r.err;
  dir.write("bert/model.json", R"({"arch": "bert", "bert": {}})");
  r = test::run_command({python, tool, dir.file("bert")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir.file("bert") + "/model.json: arch: 'bert' is not a student"),
            std::string::npos)
      << r.err;
}

// A misspelt KDX_KERNEL_ISA is an error naming it, not a silent fallback.
TEST(OnnxExport, KdxTagRefusesAnUnknownKernelSet) {
  test::TempDir dir;
  std::vector<data::Document> docs;
  auto docs_path = runne_docs(dir, docs);
  auto ex = write_export(dir, "lstm32", {{"arch", "lstm"}, {"emb", 16}, {"hidden", 32}}, docs);
  auto r = test::run_command({KDX_TAG_BIN, ex, "--batch", docs_path, "--out", dir.file("p.jsonl")},
                             "", {"KDX_KERNEL_ISA=avx512x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("KDX_KERNEL_ISA: 'avx512x' is not avx512, avx2 or none"), std::string::npos)
      << r.err;
  auto ok = test::run_command({KDX_TAG_BIN, ex, "--batch", docs_path, "--out", dir.file("p.jsonl")},
                              "", {"KDX_KERNEL_ISA=avx2"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

}  // namespace
}  // namespace kdx
