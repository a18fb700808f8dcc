// The oracle-teacher control on real RuNNE text: a logits cache made from the gold tags
// (+4 for the gold class, -4 for the others) must not make any student worse than the same
// student trained on CE alone (same seed, same data), and a noisy oracle (20% of the cells
// given a wrong class) must not make it much worse. This is the test that failed when the
// distillation term was a raw MSE over every token (README, "Distillation objective").
#include "workers/training/oracle.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/support/test_support.h"
#include "workers/data/readers.h"
#include "workers/data/vocab_builder.h"
#include "workers/evaluation/predict.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/tagging_task.h"
#include "workers/training/trainer.h"

namespace kdx::training {
namespace {

// Tolerances in F1 points (the same seeds on both sides, so most of the noise cancels).
constexpr double kOracleTolerance = 1.5;  // KD with a perfect oracle vs CE only
constexpr double kNoisyTolerance = 6.0;   // KD with 20% wrong cells vs CE only

struct Subset {
  std::vector<data::Document> train_docs, dev_docs, test_docs;
  std::vector<std::string> types;
  std::unique_ptr<data::Tokenizer> tok;
  data::TagScheme scheme;
  data::EncodedDataset train, dev, test;
};

Subset& subset() {
  static Subset* s = [] {
    auto* s = new Subset;
    std::string root = test::shared_data_dir();
    auto all = data::read_dataset("runne", {root + "/runne/train.jsonl"});
    all.resize(120);
    for (size_t i = 0; i < all.size(); ++i)
      (i % 10 == 9 ? s->dev_docs : s->train_docs).push_back(all[i]);
    s->test_docs = data::read_dataset(
        "runne", {root + "/runne/test.jsonl", root + "/runne/test_with_answers.jsonl"});
    auto types = data::runne_types_near(root + "/runne/train.jsonl");
    s->types.assign(types.begin(), types.end());
    s->tok = std::make_unique<data::Tokenizer>(data::build_vocab(s->train_docs, 4000, {}),
                                               data::TokenizerOptions{});
    s->scheme = data::make_scheme("per_type_bio", s->types);
    s->train = data::encode_dataset(s->train_docs, *s->tok, s->scheme, 128);
    s->dev = data::encode_dataset(s->dev_docs, *s->tok, s->scheme, 128);
    s->test = data::encode_dataset(s->test_docs, *s->tok, s->scheme, 128);
    return s;
  }();
  return *s;
}

std::string oracle_cache(const test::TempDir& dir, double noise) {
  auto& s = subset();
  std::string path = dir.file("oracle-" + std::to_string(noise) + ".bin");
  LogitsWriter w(path, "oracle-test", s.scheme.columns() * s.scheme.classes(), true);
  std::mt19937_64 rng(11);
  for (auto& ex : s.train.examples)
    w.add(ex.ids, oracle_logits(ex, s.scheme.columns(), s.scheme.classes(), 4.0, noise, rng));
  w.commit();
  return path;
}

// Test Mention F1 (%) of one student trained to early stopping.
double train_and_score(const std::string& arch, int layers, const LogitsCache* cache,
                       const Objective& objective) {
  static std::map<std::string, double> done;  // CE-only results are shared by two tests
  std::string key = arch + std::to_string(layers) + (cache ? "kd" : "ce");
  if (!cache && done.count(key)) return done[key];
  auto& s = subset();
  models::StudentConfig c;
  c.arch = arch;
  c.vocab_size = static_cast<int>(s.tok->vocab().size());
  c.emb = 64;
  c.hidden = 64;
  c.layers = layers;
  c.columns = s.scheme.columns();
  c.classes = s.scheme.classes();
  c.highway_bias = arch == "srupp" ? -2.0 : 0.0;
  torch::manual_seed(1);
  auto student = std::make_shared<models::StudentTaggerImpl>(c);
  TrainData td{&s.train, &s.dev, &s.dev_docs, cache, s.tok->vocab().pad(), "runne", s.types};
  TaggingTask task(student, td, objective);
  test::TempDir dir;
  TrainerOptions o;
  o.epochs = 15;
  o.patience = 2;
  o.batch_size = 16;
  o.lr = 0.01;
  o.warmup_steps = 20;
  o.checkpoint_every = 0;
  o.best_weights = dir.file("best.safetensors");
  o.quiet = true;
  auto dist = distributed::make_single_process();
  Trainer(student, task, o, *dist).run();
  load_weights(*student, o.best_weights);
  auto pred = evaluation::predict(*student, s.test, s.tok->vocab().pad());
  double f1 = 100 * evaluation::score("runne", s.test_docs, pred, s.types).mention.f1;
  if (!cache) done[key] = f1;
  return f1;
}

class OracleTeacher : public ::testing::TestWithParam<std::string> {};

TEST_P(OracleTeacher, DistillingAnOracleDoesNotHurt) {
  ASSERT_FALSE(test::shared_data_dir().empty()) << "the real data sets are missing";
  torch::set_num_threads(1);
  test::TempDir dir;
  LogitsCache perfect(oracle_cache(dir, 0.0), "oracle-test");
  LogitsCache noisy(oracle_cache(dir, 0.2), "oracle-test");
  Objective ce, kd;
  kd.kd_weight = 1.0;  // the defaults: centred MSE, weight 1
  double f_ce = train_and_score(GetParam(), 1, nullptr, ce);
  double f_kd = train_and_score(GetParam(), 1, &perfect, kd);
  double f_noisy = train_and_score(GetParam(), 1, &noisy, kd);
  std::printf("[ oracle   ] %s: CE %.2f, KD oracle %.2f, KD noisy oracle %.2f\n",
              GetParam().c_str(), f_ce, f_kd, f_noisy);
  EXPECT_GT(f_ce, 10.0) << "the CE-only student learned nothing";
  EXPECT_GE(f_kd, f_ce - kOracleTolerance);
  EXPECT_GE(f_noisy, f_ce - kNoisyTolerance);
}

INSTANTIATE_TEST_SUITE_P(Archs, OracleTeacher, ::testing::Values("lstm", "sru", "srupp"));

// Two stacked SRU layers learn as well as one does (the second layer's highway reads its
// input halves; before the reference rules a 2-layer SRU stayed at 0 F1).
TEST(OracleTeacherSru, TwoLayersLearn) {
  ASSERT_FALSE(test::shared_data_dir().empty()) << "the real data sets are missing";
  torch::set_num_threads(1);
  double one = train_and_score("sru", 1, nullptr, {});
  double two = train_and_score("sru", 2, nullptr, {});
  std::printf("[ sru      ] 1 layer %.2f, 2 layers %.2f\n", one, two);
  EXPECT_GT(two, 0.8 * one);
}

}  // namespace
}  // namespace kdx::training
