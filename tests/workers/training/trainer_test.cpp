#include "workers/training/trainer.h"

#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/data/vocab_builder.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/tagging_task.h"

namespace kdx::training {
namespace {

// A generated NER set: "<name> <verb> in <city> ." with PER and LOC spans.
std::vector<data::Document> toy_docs(int n, uint64_t seed) {
  const char* names[] = {"Anna", "Boris", "Clara", "Dmitri", "Elena", "Fyodor", "Galina", "Igor"};
  const char* cities[] = {"Moscow", "Kazan", "Omsk", "Tver", "Perm", "Sochi"};
  const char* verbs[] = {"lives", "works", "sings", "waits", "reads"};
  std::mt19937_64 rng(seed);
  std::vector<data::Document> out;
  for (int i = 0; i < n; ++i) {
    std::string text;
    data::Document d;
    d.id = std::to_string(i);
    for (int s = 0; s < 3; ++s) {
      std::string name = names[rng() % 8], verb = verbs[rng() % 5], city = cities[rng() % 6];
      int p = static_cast<int>(text.size());
      text += name + " " + verb + " in ";
      int c = static_cast<int>(text.size());
      text += city + " . ";
      d.entities.push_back({p, p + static_cast<int>(name.size()), "PER"});
      d.entities.push_back({c, c + static_cast<int>(city.size()), "LOC"});
    }
    d.text = data::decode_utf8(text, "toy");
    out.push_back(d);
  }
  return out;
}

struct Toy {
  std::vector<data::Document> train_docs = toy_docs(60, 1), dev_docs = toy_docs(12, 2);
  data::Tokenizer tok{data::build_vocab(train_docs, 200, {}), {}};
  data::TagScheme scheme = data::make_scheme("per_type_bio", {"LOC", "PER"});
  data::EncodedDataset train = data::encode_dataset(train_docs, tok, scheme, 16);
  data::EncodedDataset dev = data::encode_dataset(dev_docs, tok, scheme, 16);
  models::Tagger student(const std::string& arch, double dropout = 0.1) {
    models::StudentConfig c;
    c.arch = arch;
    c.vocab_size = static_cast<int>(tok.vocab().size());
    c.emb = 16;
    c.hidden = 16;
    c.dropout = dropout;
    c.columns = 2;
    c.classes = 3;
    torch::manual_seed(5);
    return std::make_shared<models::StudentTaggerImpl>(c);
  }
  TrainData data() {
    return {&train, &dev, &dev_docs, nullptr, tok.vocab().pad(), "conll", {"LOC", "PER"}};
  }
};

TrainerOptions quick(int epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.batch_size = 8;
  o.lr = 0.01;
  o.warmup_steps = 5;
  o.checkpoint_every = 0;
  o.quiet = true;
  return o;
}

class LearnsToyNer : public ::testing::TestWithParam<std::string> {};

TEST_P(LearnsToyNer, ReachesHighDevF1) {
  torch::set_num_threads(1);
  Toy toy;
  auto tagger = toy.student(GetParam());
  auto dist = distributed::make_single_process();
  TaggingTask task(tagger, toy.data(), {});
  Trainer t(tagger, task, quick(12), *dist);
  auto s = t.run();
  EXPECT_GT(s.best_score, 0.95) << GetParam();
  EXPECT_EQ(s.step, 12 * static_cast<long>((toy.train.examples.size() + 7) / 8));
}

INSTANTIATE_TEST_SUITE_P(Archs, LearnsToyNer, ::testing::Values("lstm", "sru", "srupp"));

TEST(Trainer, ResumeReachesTheSameWeights) {
  torch::set_num_threads(1);
  Toy toy;
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  auto straight = toy.student("sru");
  TaggingTask straight_task(straight, toy.data(), {});
  Trainer(straight, straight_task, quick(3), *dist).run();

  auto opts = quick(3);
  opts.checkpoint_dir = dir.file("ckpt");
  long per_epoch = static_cast<long>((toy.train.examples.size() + 7) / 8);
  opts.max_steps = per_epoch + 3;  // stops inside epoch 2, checkpoint written
  auto first = toy.student("sru");
  TaggingTask first_task(first, toy.data(), {});
  auto s1 = Trainer(first, first_task, opts, *dist).run();
  EXPECT_EQ(s1.step, per_epoch + 3);
  opts.max_steps = 0;
  auto resumed = toy.student("sru");  // fresh weights: everything must come from the checkpoint
  TaggingTask resumed_task(resumed, toy.data(), {});
  auto s2 = Trainer(resumed, resumed_task, opts, *dist).run();
  EXPECT_EQ(s2.step, 3 * per_epoch);
  for (auto& p : straight->named_parameters())
    EXPECT_LT((p.value() - resumed->named_parameters()[p.key()]).abs().max().item<float>(), 1e-6)
        << p.key();
}

TEST(Trainer, NanLossStopsWithClearErrorAndKeepsCheckpoint) {
  Toy toy;
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  auto opts = quick(2);
  opts.checkpoint_dir = dir.file("ckpt");
  opts.checkpoint_every = 1;
  auto tagger = toy.student("lstm");
  opts.max_steps = 3;
  TaggingTask task(tagger, toy.data(), {});
  Trainer(tagger, task, opts, *dist).run();
  opts.max_steps = 0;
  {
    torch::NoGradGuard g;
    tagger->named_parameters()["head.bias"].fill_(std::nanf(""));
  }
  // A fresh trainer would resume the good checkpoint; poison the checkpoint's weights instead.
  save_weights(*tagger, dir.file("ckpt/model-3.safetensors"));
  try {
    auto fresh = toy.student("lstm");
    TaggingTask fresh_task(fresh, toy.data(), {});
    Trainer(fresh, fresh_task, opts, *dist).run();
    FAIL() << "expected a NaN error";
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "loss is NaN at step 4 (epoch 1); training stopped; the last good checkpoint is kept in " +
            dir.file("ckpt"));
  }
  EXPECT_TRUE(test::file_exists(dir.file("ckpt/state.json")));
}

TEST(Trainer, EpochOrderIsAPermutationAndDependsOnSeedAndEpoch) {
  auto a = epoch_order(100, 1, 0), b = epoch_order(100, 1, 1), c = epoch_order(100, 1, 0);
  EXPECT_EQ(a, c);
  EXPECT_NE(a, b);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
}

}  // namespace
}  // namespace kdx::training
