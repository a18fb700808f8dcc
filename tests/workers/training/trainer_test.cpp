#include "workers/training/trainer.h"

#include <gtest/gtest.h>

#include <csignal>
#include <random>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "tests/workers/training/toy_ner.h"
#include "workers/data/vocab_builder.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/tagging_task.h"

namespace kdx::training {
namespace {

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

// A stop that arrives once no step is left to check it (here: already set when a finished run
// resumes) still ends the run as a stop, after its checkpoint, not as a finished training.
TEST(Trainer, AStopAfterTheLastStepIsStillAStop) {
  torch::set_num_threads(1);
  Toy toy;
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  auto opts = quick(1);
  opts.checkpoint_dir = dir.file("ckpt");
  auto tagger = toy.student("sru");
  TaggingTask task(tagger, toy.data(), {});
  EXPECT_TRUE(Trainer(tagger, task, opts, *dist).run().finished);
  EXPECT_FALSE(g_in_training_loop.load());
  g_stop_signal.store(SIGTERM);
  auto again = toy.student("sru");
  TaggingTask again_task(again, toy.data(), {});
  EXPECT_THROW(Trainer(again, again_task, opts, *dist).run(), StopRequested);
  g_stop_signal.store(0);
  EXPECT_FALSE(g_in_training_loop.load());  // cleared on the way out by the exception too
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
