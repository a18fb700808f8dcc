// The shipped experiment files: smoke.yaml end to end (scaled down further so it runs in
// about a minute) from submit to report, and the full-size grids planned with --dry-run.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/input_file.h"
#include "tests/support/test_support.h"
#include "workers/data/readers.h"
#include "workers/data/vocab_builder.h"
#include "workers/models/bert.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/training/run_spec.h"
#include "workers/training/student_init.h"

namespace kdx {
namespace {

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << "smoke.yaml no longer contains: " << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

TEST(Experiments, SmokeEndToEndFromSubmitToReport) {
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty());
  test::TempDir dir;
  std::string yaml = read_input(KDX_SOURCE_DIR "/experiments/smoke.yaml", InputKind::Data);
  yaml = replace_once(yaml, "  epochs: 6\n",
                      "  epochs: 1\n  max_train_docs: 16\n  max_test_docs: 4\n");
  yaml = replace_once(yaml, "  emb: 128\n  hidden: 256\n", "  emb: 16\n  hidden: 16\n");
  yaml = replace_once(yaml, "{file: navec}", "{file: " + test::navec_tar() + "}");
  yaml = replace_once(yaml, "fixed: {epochs: 8,", "fixed: {epochs: 1, max_test_docs: 4,");
  yaml = replace_once(yaml, "hidden: 64}", "hidden: 8}");
  yaml = replace_once(yaml, "seed: [1, 2]", "seed: [1]");
  yaml = replace_once(yaml, "    unlabeled: runne/dev.jsonl\n", "");
  dir.write("smoke.yaml", yaml);
  std::vector<std::string> env = {"KDX_DATA_DIR=" + data, "OMP_NUM_THREADS=1"};
  auto r = test::run_command(
      {KDX_BIN, "submit", "smoke.yaml", "--executor", "local", "--jobs", "2", "--wait"}, dir.path(),
      env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("8 runs: 8 COMPLETED"), std::string::npos) << r.out;
  auto rep =
      test::run_command({KDX_BIN, "report", "-e", "smoke", "--out", "results"}, dir.path(), env);
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  // The paper's table: the recurrent teacher's row, 6 student configurations, KD against
  // scratch.
  EXPECT_NE(rep.out.find("| teacher (lstm) | 16 | 1 |"), std::string::npos) << rep.out;
  int rows = 0;
  // "(!)": a row with a warning (a one-epoch student of 8 units may find no dev entity).
  for (std::string arch : {"\n| lstm |", "\n| sru |", "\n| srupp |", "\n| lstm (!) |",
                           "\n| sru (!) |", "\n| srupp (!) |"})
    for (size_t p = 0; (p = rep.out.find(arch, p)) != std::string::npos; ++p) ++rows;
  EXPECT_EQ(rows, 6);
  auto json = nlohmann::json::parse(test::slurp(dir.file("results/report.json")));
  int with_gain = 0;
  for (auto& s : json["datasets"][0]["students"]) with_gain += !s["kd_gain_points"].is_null();
  EXPECT_EQ(with_gain, 3);  // each KD student paired with its no-KD twin
  // The frozen navec table counts in the teacher's total, not as trainable.
  auto& t = json["datasets"][0]["teacher"];
  EXPECT_GT(t["params"]["mean"].get<double>(), t["params_trainable"]["mean"].get<double>()) << t;
  for (auto f : {"report.md", "report.csv", "report.tex", "report.html", "runne.svg"})
    EXPECT_TRUE(test::file_exists(dir.file(std::string("results/") + f))) << f;
}

// The paper's two-phase DAG, scaled down further: teacher -> logits over the transfer corpus
// -> student_kd -> student_finetune, beside the one-phase twin, from submit to report.
TEST(Experiments, TwoPhaseCpuVariantEndToEnd) {
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty());
  test::TempDir dir;
  std::string yaml =
      read_input(KDX_SOURCE_DIR "/experiments/malakhov2022_cpu.yaml", InputKind::Data);
  yaml = replace_once(yaml, "  epochs: 3\n",
                      "  epochs: 1\n  max_train_docs: 16\n  max_test_docs: 4\n");
  yaml = replace_once(yaml, "  hidden: 128\n  heads: 4\n  ffn: 256\n",
                      "  hidden: 32\n  heads: 2\n  ffn: 64\n");
  yaml = replace_once(yaml, "unlabeled: [runne/dev.jsonl, rurebus/train_part_1.zip]",
                      "unlabeled: runne/dev.jsonl");
  yaml = replace_once(yaml, "    epochs: 12\n", "    epochs: 2\n    max_test_docs: 4\n");
  yaml = replace_once(yaml, "channels: [192, 96]", "channels: [24, 12]");
  yaml = replace_once(yaml, "    emb: 256\n", "    emb: 16\n");
  yaml = replace_once(yaml, "    hidden: 128\n    layers: 1\n", "    hidden: 16\n    layers: 1\n");
  yaml = replace_once(yaml, "{epochs: 3,", "{epochs: 1,");
  dir.write("two_phase.yaml", yaml);
  std::vector<std::string> env = {"KDX_DATA_DIR=" + data, "OMP_NUM_THREADS=1"};
  auto r = test::run_command(
      {KDX_BIN, "submit", "two_phase.yaml", "--executor", "local", "--jobs", "2", "--wait"},
      dir.path(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("8 runs: 8 COMPLETED"), std::string::npos) << r.out;
  auto rep = test::run_command({KDX_BIN, "report", "-e", "malakhov2022_cpu", "--format", "json"},
                               dir.path(), env);
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  auto json = nlohmann::json::parse(rep.out);
  std::map<std::string, int> phases;
  for (auto& s : json["datasets"][0]["students"]) ++phases[s["kd_label"].get<std::string>()];
  // One row per phase (2 seeds each), the fine-tuned row paired with its one-phase twin.
  EXPECT_EQ(phases,
            (std::map<std::string, int>{
                {"CE+Dice", 1}, {"phase 1: KD mse only", 1}, {"phase 2: KD, then fine-tuned", 1}}))
      << rep.out;
  for (auto& s : json["datasets"][0]["students"])
    if (s["kd_label"] == "phase 2: KD, then fine-tuned") {
      EXPECT_FALSE(s["kd_gain_points"].is_null()) << s;
    }
}

TEST(Experiments, FullGridsPlanWithAHuggingFaceCheckpoint) {
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty());
  test::TempDir dir;
  // A small checkpoint in Hugging Face's layout stands in for rubert-base-cased.
  models::BertConfig c;
  c.vocab_size = 6;
  c.hidden = 8;
  c.layers = 1;
  c.heads = 2;
  c.intermediate = 16;
  models::BertTaggerImpl t(c, 1, 3);
  models::save_hf_checkpoint(t, dir.file("rubert"));
  dir.write("rubert/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nа\n");
  for (auto [file, dataset] :
       {std::pair{"runne_grid.yaml", "runne"}, {"rurebus_grid.yaml", "rurebus"}}) {
    auto r = test::run_command(
        {KDX_BIN, "submit", KDX_SOURCE_DIR "/experiments/" + std::string(file), "--dry-run"},
        dir.path(), {"KDX_DATA_DIR=" + data, "RUBERT_DIR=" + dir.file("rubert")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // 3 archs x 3 sizes x 2 depths x 3 loss weights x 3 seeds.
    EXPECT_NE(r.out.find("  " + std::string(dataset) + ": 1 teacher 1 logits 162 student\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("gpu"), std::string::npos);
  }
  // The paper's recipe at full size: per architecture and seed the RuNNE-only student and
  // the two phases, phase 1 on the user's transfer corpus.
  dir.write("gazeta.txt", "Новости дня.\n");
  auto paper = test::run_command(
      {KDX_BIN, "submit", KDX_SOURCE_DIR "/experiments/malakhov2022.yaml", "--dry-run", "--json"},
      dir.path(),
      {"KDX_DATA_DIR=" + data, "RUBERT_DIR=" + dir.file("rubert"),
       "TRANSFER_CORPUS=" + dir.file("gazeta.txt")});
  ASSERT_EQ(paper.exit_code, 0) << paper.err;
  std::map<std::string, int> stages;
  const auto paper_plan = nlohmann::json::parse(paper.out);
  for (auto& run : paper_plan["runs"]) {
    ++stages[run["stage"].get<std::string>()];
    auto& p = run["params"];
    if (run["stage"] == "student_kd") {
      EXPECT_EQ(p["loss"]["kd_loss"], "mse");
      EXPECT_EQ(p["loss"]["ce_weight"], 0);
      EXPECT_EQ(p["epochs"], 40);
      EXPECT_EQ(p["freeze_embedding_epochs"], 21);
    }
    if (run["stage"] == "student_finetune") {
      EXPECT_EQ(p["sampler"], "entity_balanced");
      EXPECT_EQ(p["freeze_embedding_epochs"], 0);
      EXPECT_EQ(p["loss"]["dice_weight"], 0.8);
    }
    if (run["stage"] == "teacher") {
      EXPECT_EQ(p["tagging"], "per_type_bilou");
    }
  }
  EXPECT_EQ(stages, (std::map<std::string, int>{{"teacher", 1},
                                                {"logits", 1},
                                                {"student", 9},
                                                {"student_kd", 9},
                                                {"student_finetune", 9}}));
  auto unset = test::run_command(
      {KDX_BIN, "submit", KDX_SOURCE_DIR "/experiments/runne_grid.yaml", "--dry-run"}, dir.path(),
      {"KDX_DATA_DIR=" + data, "RUBERT_DIR="});
  EXPECT_EQ(unset.exit_code, 2);
  EXPECT_NE(unset.err.find("teacher.init_from: environment variable RUBERT_DIR is not set"),
            std::string::npos)
      << unset.err;
}

// The paper's headline: students at least 25x smaller than RuBERT-base. A checkpoint shaped
// like DeepPavlov/rubert-base-cased (12 x 768, a vocabulary of 119,547 wordpieces, here built
// from the data sets' own text and padded) stands in for it; every student of the shipped
// grids is built by the worker's own code (trimmed vocabulary from the real training text)
// and counted.
TEST(Experiments, ShippedGridsReachThePapersCompressionAgainstRubertBase) {
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty());
  test::TempDir dir;
  std::vector<data::Document> text;
  for (auto& d : data::read_texts(data + "/runne/train.jsonl")) text.push_back(d);
  for (auto& d : data::read_texts(data + "/runne/dev.jsonl")) text.push_back(d);
  for (auto part : {"train_part_1.zip", "train_part_2.zip", "train_part_3.zip"})
    for (auto& d : data::read_texts(data + "/rurebus/" + part)) text.push_back(d);
  const size_t kRubertVocab = 119547;
  auto vocab = data::build_vocab(text, kRubertVocab, {});
  for (int i = 0; vocab.size() < kRubertVocab; ++i) vocab.add("[unused" + std::to_string(i) + "]");
  ASSERT_EQ(vocab.size(), kRubertVocab);
  ::mkdir(dir.file("rubert").c_str(), 0755);
  data::save_vocab(vocab, dir.file("rubert/vocab.txt"));
  models::BertConfig rubert;
  rubert.vocab_size = static_cast<int>(kRubertVocab);
  rubert.hidden = 768;
  rubert.layers = 12;
  rubert.heads = 12;
  rubert.intermediate = 3072;
  write_file_atomic(dir.file("rubert/config.json"), models::bert_config_to_hf(rubert).dump(2));
  int64_t teacher_params = 0;
  {
    models::BertModelImpl bert(rubert);  // the encoder alone, as the paper counts RuBERT
    teacher_params = models::parameter_count(bert);
  }
  // 177.26M: RuBERT-base without its pooler (0.59M), which a tagger never uses.
  EXPECT_NEAR(static_cast<double>(teacher_params), 177.26e6, 0.05e6);

  for (auto [file, format] :
       {std::pair{"runne_grid.yaml", "runne"}, {"rurebus_grid.yaml", "rurebus"}}) {
    auto r =
        test::run_command({KDX_BIN, "submit", KDX_SOURCE_DIR "/experiments/" + std::string(file),
                           "--dry-run", "--json"},
                          dir.path(), {"KDX_DATA_DIR=" + data, "RUBERT_DIR=" + dir.file("rubert")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto plan = nlohmann::json::parse(r.out);
    std::map<std::string, nlohmann::json> configs;  // distinct architectures
    nlohmann::json a_student;
    for (auto& run : plan["runs"]) {
      if (run["stage"] != "student") continue;
      auto p = run["params"];
      nlohmann::json arch = {{"arch", p["arch"]}, {"hidden", p["hidden"]}, {"layers", p["layers"]},
                             {"emb", p["emb"]},   {"proj", p["proj"]},     {"vocab", p["vocab"]}};
      configs[arch.dump()] = p;
      a_student = run;
    }
    ASSERT_FALSE(configs.empty());
    // The students' training text, read and encoded as the worker does (the teacher's
    // tokenizer; the vocabulary is trimmed to the text).
    a_student["teacher_dir"] = dir.file("rubert");
    dir.write(std::string(format) + "/run.json", a_student.dump());
    auto spec = training::read_run_spec(dir.file(std::string(format) + "/run.json"));
    training::Prepared prep;
    training::read_documents(spec, prep);
    prep.types = training::dataset_types(spec, prep.train_docs);
    prep.tokenizer = training::load_tokenizer(dir.file("rubert"));
    prep.scheme = data::make_scheme(spec.param_string("tagging"), prep.types);
    training::encode_all(spec, prep);
    int at_25x = 0;
    for (auto& [key, params] : configs) {
      spec.params = params;
      spec.params["init_embedding"] = false;  // the count does not depend on the init
      auto student = training::make_student(spec, prep, dir.file("rubert"));
      double ratio = static_cast<double>(teacher_params) /
                     static_cast<double>(models::parameter_count(*student));
      std::printf("[ size     ] %s %s: %s params %.2fM, %.1fx fewer (rows %d of %zu)\n", file,
                  key.c_str(), params["vocab"].get<std::string>().c_str(),
                  static_cast<double>(models::parameter_count(*student)) / 1e6, ratio,
                  student->config.vocab_size, kRubertVocab);
      at_25x += ratio >= 25.0;
    }
    // Every architecture of the grid has configurations at the paper's compression or beyond.
    EXPECT_GE(at_25x, 3) << file;
  }
}

}  // namespace
}  // namespace kdx
