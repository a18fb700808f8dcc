#include "orchestrator/spec.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

// A valid experiment whose data files exist inside a temp data root.
class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_.write("runne/train.jsonl", "{}\n");
    data_.write("runne/test.jsonl", "{}\n");
    opt_.data_dir = data_.path();
  }
  Spec parse(const std::string& text) { return parse_spec_text(text, "exp.yaml", opt_); }
  std::string error_of(const std::string& text) {
    try {
      parse(text);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  test::TempDir data_;
  SpecOptions opt_;
};

const char* kHead =
    "experiment: t\n"
    "datasets:\n"
    "  - {name: runne, format: runne, train: runne/train.jsonl, test: runne/test.jsonl}\n"
    "teacher: {layers: 2, hidden: 64}\n";

TEST_F(SpecTest, ParsesFullExample) {
  auto s = parse(
      std::string(kHead) +
      "students:\n"
      "  fixed: {epochs: 2, loss: {ce_weight: 1.0}}\n"
      "  grid:\n"
      "    arch: [lstm, sru]\n"
      "    hidden: [32, 64]\n"
      "    loss: [{kd_weight: 0}, {kd_weight: 1.5}]\n"
      "  zip: {layers: [1, 2], dropout: [0.1, 0.2]}\n"
      "  exclude: [{arch: sru, hidden: 32}]\n"
      "  random: {samples: 3, seed: 7, params: {lr: {loguniform: [1.0e-4, 1.0e-2]}}}\n"
      "  resources: {cpus: 2, mem: 4G, time: '2:00:00', partition: gpu, array_throttle: 10}\n");
  EXPECT_EQ(s.experiment, "t");
  ASSERT_EQ(s.datasets.size(), 1u);
  EXPECT_EQ(s.datasets[0].resolved_splits["train"][0], data_.path() + "/runne/train.jsonl");
  ASSERT_EQ(s.students.grid.size(), 3u);
  EXPECT_EQ(s.students.grid[2].values[1]["kd_weight"], 1.5);
  EXPECT_EQ(s.students.zip.size(), 2u);
  EXPECT_EQ(s.students.random.samples, 3);
  EXPECT_EQ(s.students.resources.partition, "gpu");
  EXPECT_EQ(s.students.resources.array_throttle, 10);
  EXPECT_EQ(s.teacher.params["hidden"], 64);
}

TEST_F(SpecTest, MalformedYaml) {
  EXPECT_EQ(error_of("experiment: t\ndatasets: [a, b\n"),
            "exp.yaml:3:1: invalid YAML: end of sequence flow not found");
}

TEST_F(SpecTest, UnknownTopLevelKey) {
  EXPECT_EQ(error_of(std::string(kHead) + "students: {}\nstudnets: {}\n"),
            "exp.yaml:6:1: studnets: unknown key (expected one of: experiment, datasets, pretrain, "
            "teacher, "
            "logits, students, worker)\n  studnets: {}\n  ^");
}

TEST_F(SpecTest, UnknownGridParameter) {
  EXPECT_EQ(
      error_of(std::string(kHead) + "students:\n  grid:\n    hiden: [1]\n"),
      "exp.yaml:7:5: students.grid.hiden: unknown parameter (expected one of: arch, hidden, "
      "layers, dropout, init_embedding, vocab, dataset, loss, emb, proj, highway_bias, rescale, "
      "forget_bias, residual, "
      "attention_dropout, conv, vectors, epochs, "
      "batch_size, lr, weight_decay, "
      "warmup_steps, grad_clip, patience, lr_schedule, plateau_factor, plateau_patience, min_lr, "
      "freeze_embedding_epochs, sampler, sampler_draws, seed, window, tagging, decoding, "
      "max_train_docs, max_test_docs, checkpoint_every, threads, ranks, device, amp, "
      "two_phase)\n      hiden: [1]\n      ^");
}

TEST_F(SpecTest, WrongTypeNamesKeyPath) {
  EXPECT_EQ(error_of(std::string(kHead) + "students:\n  grid:\n    hidden: [32, big]\n"),
            "exp.yaml:7:18: students.grid.hidden[1]: expected an integer, got a string\n"
            "      hidden: [32, big]\n                   ^");
}

// conv: a mapping holding lists (not a grid axis); a grid over whole front-ends.
TEST_F(SpecTest, ConvFrontEndListsInsideAMapping) {
  auto s = parse(std::string(kHead) +
                 "students:\n"
                 "  fixed: {conv: {kernels: [1, 3, 5], channels: [768, 384], dropout: 0.1}}\n"
                 "  grid:\n"
                 "    conv: [{channels: []}, {channels: [96]}]\n");
  EXPECT_EQ(s.students.fixed["conv"]["channels"], (nlohmann::json{768, 384}));
  ASSERT_EQ(s.students.grid.size(), 1u);
  EXPECT_EQ(s.students.grid[0].values[1]["channels"], (nlohmann::json{96}));
  auto e = error_of(std::string(kHead) + "students:\n  fixed: {conv: {channels: [768, x]}}\n");
  EXPECT_NE(e.find("students.fixed.conv: channels[1]: expected an integer, got a string"),
            std::string::npos)
      << e;
}

TEST_F(SpecTest, ListWhereScalarExpected) {
  EXPECT_EQ(error_of(std::string(kHead) + "students:\n  fixed:\n    epochs: [1, 2]\n"),
            "exp.yaml:7:13: students.fixed.epochs: expected an integer, got a list\n"
            "      epochs: [1, 2]\n              ^");
}

TEST_F(SpecTest, ScalarWhereGridListExpected) {
  EXPECT_EQ(error_of(std::string(kHead) + "students:\n  grid:\n    hidden: 32\n"),
            "exp.yaml:7:13: students.grid.hidden: expected a list of values, got a single value "
            "(write [32] or move it to fixed:)\n      hidden: 32\n              ^");
}

TEST_F(SpecTest, EmptyGridAxis) {
  EXPECT_EQ(error_of(std::string(kHead) + "students:\n  grid:\n    hidden: []\n"),
            "exp.yaml:7:13: students.grid.hidden: empty list: the grid would have no runs\n"
            "      hidden: []\n              ^");
}

TEST_F(SpecTest, BadEnumValue) {
  EXPECT_EQ(error_of(std::string(kHead) + "students:\n  grid:\n    arch: [lstm, gru]\n"),
            "exp.yaml:7:18: students.grid.arch[1]: 'gru' is not one of: lstm, sru, srupp\n"
            "      arch: [lstm, gru]\n                   ^");
}

TEST_F(SpecTest, MissingDataFileNamesFetch) {
  std::string err = error_of(
      "experiment: t\ndatasets:\n  - {name: rb, format: rurebus, train: rurebus/x.zip, test: "
      "rurebus/y.zip}\n"
      "teacher: {}\nstudents: {}\n");
  EXPECT_EQ(err,
            "exp.yaml:3:40: datasets[0].train: file not found: " + data_.path() +
                "/rurebus/x.zip (data root " + data_.path() +
                "; get the data with `kdx data fetch rurebus`, or set --data-dir / KDX_DATA_DIR)\n"
                "    - {name: rb, format: rurebus, train: rurebus/x.zip, test: rurebus/y.zip}\n"
                "                                         ^");
}

TEST_F(SpecTest, ZipLengthsMustMatch) {
  EXPECT_EQ(
      error_of(std::string(kHead) + "students:\n  zip:\n    layers: [1, 2]\n    hidden: [8]\n"),
      "exp.yaml:8:5: students.zip.hidden: has 1 values but students.zip.layers has 2 (zip "
      "advances lists together)\n      hidden: [8]\n      ^");
}

TEST_F(SpecTest, UnknownDatasetInGrid) {
  EXPECT_EQ(
      error_of(std::string(kHead) + "students:\n  grid:\n    dataset: [runne, conll03]\n"),
      "exp.yaml:7:22: students.grid.dataset[1]: unknown dataset 'conll03' (not in datasets:)\n"
      "      dataset: [runne, conll03]\n                       ^");
}

TEST_F(SpecTest, BadResources) {
  EXPECT_EQ(error_of(std::string(kHead) + "students:\n  resources: {time: soon}\n"),
            "exp.yaml:6:21: students.resources.time: 'soon' is not a time limit (MM, HH:MM:SS, "
            "D-HH:MM:SS)\n    resources: {time: soon}\n                      ^");
  EXPECT_EQ(
      error_of(std::string(kHead) + "students:\n  resources: {partition: \"gpu; rm -rf ~\"}\n"),
      "exp.yaml:6:26: students.resources.partition: 'gpu; rm -rf ~' may only hold letters, "
      "digits, '_', '-', '.', ','\n    resources: {partition: \"gpu; rm -rf ~\"}\n                 "
      "          ^");
}

TEST_F(SpecTest, MissingRequiredSection) {
  EXPECT_EQ(error_of("experiment: t\ndatasets: []\n"),
            "exp.yaml:1:1: teacher: missing (required)\n  experiment: t\n  ^");
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

TEST_F(SpecTest, PretrainAndTeacherArchitectureDoNotMix) {
  data_.write("runne/dev.jsonl", "{}\n");
  EXPECT_EQ(error_of("experiment: t\n"
                     "datasets:\n"
                     "  - {name: runne, format: runne, train: runne/train.jsonl, test: "
                     "runne/test.jsonl}\n"
                     "pretrain: {corpus: [runne/dev.jsonl]}\n"
                     "teacher: {layers: 2}\n"
                     "students: {}\n"),
            "exp.yaml:5:19: teacher.layers: set by the pretrain stage (the teacher fine-tunes the "
            "pretrained encoder); move it under pretrain:\n"
            "  teacher: {layers: 2}\n"
            "                    ^");
}

// Unlabelled text that holds a test document of the experiment is refused where it is
// named, whether it is a pretraining corpus or a dataset's unlabeled files.
TEST_F(SpecTest, TestTextInUnlabelledTextIsRefused) {
  std::string root = test::shared_data_dir();
  ASSERT_FALSE(root.empty());
  opt_.data_dir = root;
  const std::string datasets =
      "experiment: t\n"
      "datasets:\n"
      "  - {name: runne, format: runne, train: runne/train.jsonl,\n"
      "     test: [runne/test.jsonl, runne/test_with_answers.jsonl]}\n"
      "  - {name: rurebus, format: rurebus, train: rurebus/train_part_1.zip,\n"
      "     test: rurebus/test_ner_only.zip}\n";
  auto e = error_of(datasets +
                    "pretrain:\n  corpus: [runne/dev.jsonl, rurebus/test.zip]\n"
                    "students: {}\nteacher: {}\n");
  EXPECT_EQ(e.substr(0, e.find('\n')),
            "exp.yaml:8:29: pretrain.corpus: " + root + "/rurebus/test.zip: document '" +
                e.substr(e.find("document '") + 10, e.find("' is") - e.find("document '") - 10) +
                "' is also a test document of dataset rurebus; learning from it, even without "
                "labels, leaks the test set");
  EXPECT_NE(e.find("rurebus/test.zip: document '"), std::string::npos) << e;
  // The training text of both, and RuNNE's unlabelled dev texts, are fine.
  auto ok = parse(datasets +
                  "pretrain:\n  corpus: [runne/dev.jsonl, runne/train.jsonl, "
                  "rurebus/train_part_1.zip]\n"
                  "students: {}\nteacher: {}\n");
  EXPECT_EQ(ok.pretrain.resolved_corpus.size(), 3u);
  auto leak = error_of(
      "experiment: t\n"
      "datasets:\n"
      "  - {name: runne, format: runne, train: runne/train.jsonl,\n"
      "     test: [runne/test.jsonl, runne/test_with_answers.jsonl],\n"
      "     unlabeled: [runne/test.jsonl]}\n"
      "students: {}\nteacher: {}\n");
  EXPECT_NE(leak.find("exp.yaml:5:18: datasets[0].unlabeled: " + root +
                      "/runne/test.jsonl: "
                      "document '"),
            std::string::npos)
      << leak;
}

}  // namespace
}  // namespace kdx
