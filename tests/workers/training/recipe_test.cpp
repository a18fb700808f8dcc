// The paper's recipe in the training loop: Dice and label smoothing in the objective, the
// entity-balanced sampler, the plateau schedule, embedding freezing, and the stop of a run
// whose dev F1 never leaves 0.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "tests/support/test_support.h"
#include "tests/workers/training/toy_ner.h"
#include "workers/training/objective.h"
#include "workers/training/sampler.h"
#include "workers/training/trainer.h"

namespace kdx::training {
namespace {

// One window, one column, 5 classes: the Dice of a perfect prediction is 0, of a uniform
// one is what the formula says.
TEST(Dice, MatchesTheFormulaOnAHandMadeWindow) {
  const int T = 4, classes = 5;
  auto tags = torch::tensor(std::vector<int64_t>{data::kIgnoreTag, 1, 3, 0}).view({1, T, 1});
  Objective o;
  o.ce_weight = 0;
  o.dice_weight = 1;
  // Near one-hot logits at the gold classes: Dice loss ~ 1 - (4/5) (classes 1 and 3 perfect,
  // 2 and 4 absent from gold and prediction: (0 + 1) / (0 + 1) = 1 too; O weighs 0).
  auto logits = torch::full({1, T, classes}, -30.0);
  logits.index_put_({0, 1, 1}, 30.0);
  logits.index_put_({0, 2, 3}, 30.0);
  logits.index_put_({0, 3, 0}, 30.0);
  logits.index_put_({0, 0, 2}, 30.0);  // [CLS]: ignored, whatever it predicts
  auto none = torch::ones({1, T, 1}, torch::kUInt8);
  auto perfect = compute_objective(o, logits, {}, tags, none, classes, 3, 0, 1);
  EXPECT_NEAR(perfect.dice.item<double>(), 1.0 - 4.0 / 5.0, 1e-5);
  // Uniform probabilities 0.2 over the 3 labelled cells. Class 1: num = 2 * 0.2 + 1,
  // den = 3 * 0.04 + 1 + 1; class 3 the same; classes 2 and 4: 1 / (0.12 + 1).
  auto uniform =
      compute_objective(o, torch::zeros({1, T, classes}), {}, tags, none, classes, 3, 0, 1);
  double present = (2 * 0.2 + 1) / (3 * 0.04 + 1 + 1), absent = 1 / (3 * 0.04 + 1);
  EXPECT_NEAR(uniform.dice.item<double>(), 1 - (2 * present + 2 * absent) / 5, 1e-5);
  EXPECT_NEAR(uniform.total.item<double>(), uniform.dice.item<double>(), 1e-7);
}

TEST(Dice, UnlabelledWindowsDoNotCount) {
  const int T = 3, classes = 3;
  auto labelled = torch::tensor(std::vector<int64_t>{data::kIgnoreTag, 1, 2}).view({1, T, 1});
  auto unlabelled = torch::full({1, T, 1}, int64_t{data::kIgnoreTag});
  Objective o;
  o.ce_weight = 0;
  o.dice_weight = 1;
  torch::manual_seed(3);
  auto logits = torch::randn({2, T, classes});
  auto m = torch::ones({2, T, 1}, torch::kUInt8);
  auto both =
      compute_objective(o, logits, {}, torch::cat({labelled, unlabelled}), m, classes, 2, 0, 1);
  auto alone =
      compute_objective(o, logits.slice(0, 0, 1), {}, labelled, m.slice(0, 0, 1), classes, 2, 0, 1);
  EXPECT_NEAR(both.dice.item<double>(), alone.dice.item<double>(), 1e-6);
}

TEST(LabelSmoothing, IsPyTorchsDefinition) {
  torch::manual_seed(4);
  auto logits = torch::randn({1, 5, 3});
  auto tags = torch::tensor(std::vector<int64_t>{0, 2, 1, data::kIgnoreTag, 0}).view({1, 5, 1});
  Objective o;
  o.label_smoothing = 0.1;
  auto m = torch::ones({1, 5, 1}, torch::kUInt8);
  auto got = compute_objective(o, logits, {}, tags, m, 3, 4, 0).ce.item<double>();
  // (1 - e) * NLL + e * mean over classes of -log p, averaged over the 4 labelled cells.
  auto log_p = torch::log_softmax(logits.view({5, 3}), -1);
  double expect = 0;
  for (int i : {0, 1, 2, 4}) {
    int64_t y = tags.view({5})[i].item<int64_t>();
    expect += 0.9 * -log_p[i][y].item<double>() + 0.1 * -log_p[i].mean().item<double>();
  }
  EXPECT_NEAR(got, expect / 4, 1e-6);
}

// counts[example][type]
TEST(EntityBalancedSampler, FollowsLogShares) {
  std::vector<std::vector<int>> counts;
  for (int i = 0; i < 90; ++i) counts.push_back({3, 0, 0});  // type 0: 270 entities
  for (int i = 0; i < 9; ++i) counts.push_back({0, 1, 0});   // type 1: 9
  counts.push_back({0, 0, 0});                               // never drawn
  auto order = entity_balanced_order(counts, 10000, 7, 0);
  ASSERT_EQ(order.size(), 10000u);
  long rare = 0;
  for (int e : order) {
    EXPECT_NE(e, 99) << "a window without entities was drawn";
    rare += e >= 90 ? 1 : 0;
  }
  // Shares: log(271) : log(10) : 0.
  double share = std::log(10.0) / (std::log(271.0) + std::log(10.0));
  EXPECT_NEAR(static_cast<double>(rare) / 10000, share, 0.002);
  EXPECT_EQ(order, entity_balanced_order(counts, 10000, 7, 0));
  EXPECT_NE(order, entity_balanced_order(counts, 10000, 7, 1));
  EXPECT_THROW(entity_balanced_order({{0, 0}, {0, 0}}, 5, 1, 0), Error);
}

TEST(EntityBalancedSampler, CountsEntitiesOfTheEncodedWindows) {
  Toy toy;
  auto counts = entity_counts(toy.train);
  long loc = 0, per = 0;
  for (auto& row : counts) loc += row[0], per += row[1];
  // Every toy sentence has one PER and one LOC; 3 sentences a document.
  EXPECT_EQ(loc, 3 * static_cast<long>(toy.train_docs.size()));
  EXPECT_EQ(per, loc);
}

TEST(Trainer, SamplerOrderDrivesTheEpoch) {
  torch::set_num_threads(1);
  Toy toy;
  auto tagger = toy.student("sru");
  auto dist = distributed::make_single_process();
  TaggingTask task(tagger, toy.data(), {});
  auto opt = quick(2);
  auto counts = entity_counts(toy.train);
  opt.order = [counts](int epoch) { return entity_balanced_order(counts, 40, 3, epoch); };
  auto s = Trainer(tagger, task, opt, *dist).run();
  EXPECT_EQ(s.step, 2 * 5);  // 40 draws of batch 8, not the data set's size
}

TEST(Trainer, PlateauHalvesTheRateWhenDevStopsImproving) {
  torch::set_num_threads(1);
  Toy toy;
  auto tagger = toy.student("sru");
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  TaggingTask task(tagger, toy.data(), {});
  auto opt = quick(14);
  opt.lr_schedule = "plateau";
  opt.min_lr = 0.01 / 16;
  opt.metrics_path = dir.file("metrics.jsonl");
  auto s = Trainer(tagger, task, opt, *dist).run();
  // The toy set is learned within a few epochs; then dev F1 stays at its best, every epoch
  // without gain halves the rate down to the floor.
  std::vector<double> lr, f1;
  std::istringstream lines(read_input(opt.metrics_path, InputKind::Data));
  for (std::string line; std::getline(lines, line);) {
    auto m = nlohmann::json::parse(line);
    lr.push_back(m["lr"].get<double>());
    f1.push_back(m["dev_f1"].get<double>());
  }
  ASSERT_EQ(lr.size(), 14u);
  EXPECT_DOUBLE_EQ(lr[0], 0.01);
  double best = -1, scale = 1;
  for (size_t e = 0; e < lr.size(); ++e) {
    EXPECT_NEAR(lr[e], std::max(0.01 * scale, 0.01 / 16), 1e-12) << "epoch " << e + 1;
    if (f1[e] <= 0 && best <= 0) continue;  // no dev entity found yet: no plateau either
    if (f1[e] > best + 1e-12)
      best = f1[e];
    else
      scale /= 2;
  }
  EXPECT_LT(lr.back(), 0.01 / 2);
  EXPECT_GE(s.lr_scale, 1.0 / 16 - 1e-12);
}

TEST(Trainer, FrozenEmbeddingsStayFixedThenTrain) {
  torch::set_num_threads(1);
  Toy toy;
  auto tagger = toy.student("lstm");
  auto dist = distributed::make_single_process();
  auto before = tagger->word_embeddings().detach().clone();
  TaggingTask task(tagger, toy.data(), {});
  auto opt = quick(2);
  opt.frozen = {tagger->word_embeddings()};
  opt.freeze_epochs = 2;
  Trainer(tagger, task, opt, *dist).run();
  EXPECT_TRUE(torch::equal(before, tagger->word_embeddings().detach()));
  // Unfrozen from epoch 3 on.
  auto tagger2 = toy.student("lstm");
  TaggingTask task2(tagger2, toy.data(), {});
  opt.epochs = 3;
  opt.frozen = {tagger2->word_embeddings()};
  Trainer(tagger2, task2, opt, *dist).run();
  EXPECT_FALSE(torch::equal(before, tagger2->word_embeddings().detach()));
}

TEST(Trainer, DevF1StuckAtZeroStopsAfterPatience) {
  torch::set_num_threads(1);
  Toy toy;
  auto tagger = toy.student("sru");
  {
    // Every cell predicts O, and at this learning rate keeps doing so: dev F1 stays 0.
    torch::NoGradGuard g;
    auto* student = dynamic_cast<models::StudentTaggerImpl*>(tagger.get());
    auto bias = student->head->bias.view({2, 3});
    bias.select(1, 0).fill_(50.0);
  }
  auto dist = distributed::make_single_process();
  TaggingTask task(tagger, toy.data(), {});
  auto opt = quick(30);
  opt.lr = 1e-9;
  opt.warmup_steps = 0;
  opt.patience = 3;
  auto s = Trainer(tagger, task, opt, *dist).run();
  EXPECT_EQ(s.epoch, 6);  // twice the patience (at least 6) at a score of 0
  EXPECT_TRUE(s.stalled);
  EXPECT_TRUE(s.finished);
}

// The plateau starts once dev F1 is above 0: a run still tagging every token O (a deep LSTM's
// first epochs) keeps its rate instead of having it halved into staying there (the defaults
// sweep: LSTMs of 2 x 512 and 4 x 256 were cut to a quarter of their rate by epoch 4 at dev 0).
TEST(Trainer, PlateauWaitsUntilDevFindsEntities) {
  torch::set_num_threads(1);
  Toy toy;
  auto tagger = toy.student("sru");
  {
    torch::NoGradGuard g;
    auto* student = dynamic_cast<models::StudentTaggerImpl*>(tagger.get());
    student->head->bias.view({2, 3}).select(1, 0).fill_(50.0);
  }
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  TaggingTask task(tagger, toy.data(), {});
  auto opt = quick(30);
  opt.lr = 1e-9;
  opt.min_lr = 1e-12;
  opt.warmup_steps = 0;
  opt.lr_schedule = "plateau";
  opt.plateau_patience = 0;
  opt.patience = 3;
  opt.metrics_path = dir.file("metrics.jsonl");
  auto s = Trainer(tagger, task, opt, *dist).run();
  EXPECT_TRUE(s.stalled);
  std::istringstream lines(read_input(opt.metrics_path, InputKind::Data));
  int epochs = 0;
  for (std::string line; std::getline(lines, line); ++epochs) {
    auto m = nlohmann::json::parse(line);
    EXPECT_EQ(m["dev_f1"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(m["lr"].get<double>(), 1e-9) << "epoch " << epochs + 1;
  }
  EXPECT_EQ(epochs, 6);
  EXPECT_EQ(s.lr_scale, 1.0);
}

TEST(TrainingState, Version4RoundTripsAndVersion3Resumes) {
  TrainingState s;
  s.lr_scale = 0.25;
  s.plateau_best = 0.5;
  s.plateau_bad_epochs = 1;
  s.stalled = true;
  auto back = TrainingState::from_json(s.to_json(), "state.json");
  EXPECT_EQ(back.lr_scale, 0.25);
  EXPECT_EQ(back.plateau_best, 0.5);
  EXPECT_EQ(back.plateau_bad_epochs, 1);
  EXPECT_TRUE(back.stalled);
  auto v3 = s.to_json();
  v3["version"] = 3;
  for (auto k : {"lr_scale", "plateau_best", "plateau_bad_epochs", "stalled"}) v3.erase(k);
  auto old = TrainingState::from_json(v3, "state.json");
  EXPECT_EQ(old.lr_scale, 1.0);
  EXPECT_FALSE(old.stalled);
  auto bad = s.to_json();
  bad["lr_scale"] = 2.0;
  try {
    TrainingState::from_json(bad, "ck/state.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "ck/state.json: field \"lr_scale\" must be in (0, 1]");
  }
}

}  // namespace
}  // namespace kdx::training

namespace kdx::training {
namespace {

// Exact resume with the recipe's state: a plateau cut before the checkpoint, the embedding
// frozen across it and the entity-balanced order, stopped inside an epoch.
TEST(Trainer, ResumeWithPlateauFreezeAndSamplerReachesTheSameWeights) {
  torch::set_num_threads(1);
  Toy toy;
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  auto counts = entity_counts(toy.train);
  auto options = [&](const models::Tagger& tagger) {
    auto o = quick(6);
    o.lr_schedule = "plateau";
    o.plateau_patience = 0;
    o.order = [counts](int epoch) { return entity_balanced_order(counts, 48, 11, epoch); };
    o.frozen = {tagger->word_embeddings()};
    o.freeze_epochs = 3;
    return o;
  };
  auto straight = toy.student("sru");
  TaggingTask straight_task(straight, toy.data(), {});
  auto s0 = Trainer(straight, straight_task, options(straight), *dist).run();

  auto first = toy.student("sru");
  TaggingTask first_task(first, toy.data(), {});
  auto o1 = options(first);
  o1.checkpoint_dir = dir.file("ckpt");
  o1.max_steps = 4 * 6 + 2;  // 6 steps an epoch: inside epoch 5, after a plateau cut
  auto s1 = Trainer(first, first_task, o1, *dist).run();
  ASSERT_EQ(s1.step, 26);
  auto resumed = toy.student("sru");
  TaggingTask resumed_task(resumed, toy.data(), {});
  auto o2 = options(resumed);
  o2.checkpoint_dir = dir.file("ckpt");
  auto s2 = Trainer(resumed, resumed_task, o2, *dist).run();
  EXPECT_EQ(s2.step, s0.step);
  EXPECT_EQ(s2.lr_scale, s0.lr_scale);
  EXPECT_LT(s0.lr_scale, 1.0) << "no plateau cut happened: the test would prove nothing";
  for (auto& p : straight->named_parameters())
    EXPECT_LT((p.value() - resumed->named_parameters()[p.key()]).abs().max().item<float>(), 1e-6)
        << p.key();
}

}  // namespace
}  // namespace kdx::training
