// The training objective: which cells count, how the terms are normalised, and what each
// distillation loss is invariant to.
#include "workers/training/objective.h"

#include <gtest/gtest.h>

#include "workers/data/encode.h"

namespace kdx::training {
namespace {

constexpr int kIgn = data::kIgnoreTag;

struct Cells {
  torch::Tensor logits, teacher, tags, kd_mask;
  double ce_cells = 0, kd_cells = 0;
};

// B rows of T tokens with `cols` tag columns of 3 classes; [CLS]/[SEP] at both ends.
Cells make_cells(int B, int T, int cols, uint64_t seed) {
  torch::manual_seed(seed);
  Cells c;
  c.logits = torch::randn({B, T, cols * 3}, torch::requires_grad());
  c.teacher = torch::randn({B, T, cols * 3}) * 3;
  c.tags = torch::randint(0, 3, {B, T, cols}, torch::kInt64);
  c.tags.select(1, 0).fill_(kIgn);
  c.tags.select(1, T - 1).fill_(kIgn);
  c.kd_mask = c.tags.ne(kIgn).to(torch::kUInt8);
  c.ce_cells = c.kd_cells = static_cast<double>(B * (T - 2) * cols);
  return c;
}

LossTerms run(const Objective& o, const Cells& c) {
  return compute_objective(o, c.logits, c.teacher, c.tags, c.kd_mask, 3, c.ce_cells, c.kd_cells);
}

Objective kd(const std::string& loss, double w = 1.0) {
  Objective o;
  o.kd_weight = w;
  o.kd_loss = loss;
  return o;
}

TEST(Objective, DistillationTermIsZeroExactlyWhenTheStudentMatches) {
  for (auto loss : {"mse", "mse_prob", "kl"}) {
    auto c = make_cells(2, 6, 4, 1);
    EXPECT_GT(run(kd(loss), c).kd.item<double>(), 1e-3) << loss;
    c.logits = c.teacher.clone().requires_grad_();
    EXPECT_NEAR(run(kd(loss), c).kd.item<double>(), 0.0, 1e-6) << loss;
  }
}

TEST(Objective, SpecialTokensAndIgnoredCellsDoNotCount) {
  for (auto loss : {"mse", "mse_prob", "kl"}) {
    auto c = make_cells(2, 6, 4, 2);
    double before = run(kd(loss), c).kd.item<double>();
    double ce_before = run(kd(loss), c).ce.item<double>();
    // Anything at [CLS] and [SEP] (student or teacher) changes nothing.
    torch::NoGradGuard g;
    c.teacher.select(1, 0).fill_(100);
    c.teacher.select(1, 5).fill_(-100);
    auto logits = c.logits.detach().clone();
    logits.select(1, 0).fill_(50);
    c.logits = logits;
    EXPECT_NEAR(run(kd(loss), c).kd.item<double>(), before, 1e-6) << loss;
    EXPECT_NEAR(run(kd(loss), c).ce.item<double>(), ce_before, 1e-6) << loss;
  }
}

// Both terms are per-cell averages: repeating the batch, or adding tag columns that hold the
// same content, leaves them unchanged, so a weight means the same at any size.
TEST(Objective, NormalisedPerCell) {
  for (auto loss : {"mse", "mse_prob", "kl"}) {
    auto c = make_cells(2, 6, 2, 3);
    auto a = run(kd(loss), c);
    Cells twice;
    twice.logits = torch::cat({c.logits, c.logits}, 0);
    twice.teacher = torch::cat({c.teacher, c.teacher}, 0);
    twice.tags = torch::cat({c.tags, c.tags}, 0);
    twice.kd_mask = torch::cat({c.kd_mask, c.kd_mask}, 0);
    twice.ce_cells = twice.kd_cells = 2 * c.ce_cells;
    auto b = run(kd(loss), twice);
    EXPECT_NEAR(a.ce.item<double>(), b.ce.item<double>(), 1e-5) << loss;
    EXPECT_NEAR(a.kd.item<double>(), b.kd.item<double>(), 1e-5) << loss;
    Cells wide;  // every column duplicated
    auto dup = [](const torch::Tensor& t, int per) {
      auto v = t.view({t.size(0), t.size(1), -1, per});
      return torch::cat({v, v}, 2).reshape({t.size(0), t.size(1), -1});
    };
    wide.logits = dup(c.logits, 3);
    wide.teacher = dup(c.teacher, 3);
    wide.tags = dup(c.tags, 1);
    wide.kd_mask = dup(c.kd_mask, 1);
    wide.ce_cells = wide.kd_cells = 2 * c.ce_cells;
    auto w = run(kd(loss), wide);
    EXPECT_NEAR(a.ce.item<double>(), w.ce.item<double>(), 1e-5) << loss;
    EXPECT_NEAR(a.kd.item<double>(), w.kd.item<double>(), 1e-5) << loss;
  }
}

// Softmax ignores a shift of a cell's logits; so do KL and the probability MSE, while the
// paper's logit MSE asks the student to match the shift too.
TEST(Objective, OnlyLogitMseSeesAPerCellShift) {
  auto c = make_cells(1, 5, 3, 4);
  double mse = run(kd("mse"), c).kd.item<double>(), prob = run(kd("mse_prob"), c).kd.item<double>();
  double kl = run(kd("kl"), c).kd.item<double>();
  c.teacher = c.teacher + torch::randn({1, 5, 3, 1}).expand({1, 5, 3, 3}).reshape({1, 5, 9}) * 5;
  EXPECT_NEAR(run(kd("mse_prob"), c).kd.item<double>(), prob, 1e-5);
  EXPECT_NEAR(run(kd("kl"), c).kd.item<double>(), kl, 1e-4);
  EXPECT_GT(std::abs(run(kd("mse"), c).kd.item<double>() - mse), 1.0);
}

TEST(Objective, KlAtTemperatureIsScaledByTSquared) {
  auto c = make_cells(1, 5, 2, 5);
  auto o = kd("kl");
  o.temperature = 2;
  auto logits_t = c.logits / 2, teacher_t = c.teacher / 2;
  Cells scaled = c;
  scaled.logits = logits_t;
  scaled.teacher = teacher_t;
  EXPECT_NEAR(run(o, c).kd.item<double>(), 4 * run(kd("kl"), scaled).kd.item<double>(), 1e-5);
}

// An unlabelled window: no CE, and every real token's cells count for distillation.
TEST(Objective, UnlabelledExamplesCountForDistillationOnly) {
  data::Example lab, unl;
  lab.ids = unl.ids = {101, 7, 8, 102};
  lab.tags = {kIgn, kIgn, 0, 1, 2, 0, kIgn, kIgn};
  unl.tags = std::vector<int>(8, kIgn);
  unl.labelled = false;
  EXPECT_EQ(data::labelled_cells(lab), 4);
  EXPECT_EQ(data::distillation_cells(lab), 4);
  EXPECT_EQ(data::labelled_cells(unl), 0);
  EXPECT_EQ(data::distillation_cells(unl), 4);
  data::EncodedDataset set;
  set.scheme = data::make_scheme("per_type_bio", {"A", "B"});
  set.examples = {lab, unl};
  auto b = data::make_batch(set, {0, 1}, 0);
  std::vector<uint8_t> want = {0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0};
  EXPECT_EQ(b.kd_mask, want);
}

}  // namespace
}  // namespace kdx::training
