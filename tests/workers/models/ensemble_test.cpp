#include "workers/models/ensemble.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "workers/models/student.h"

namespace kdx::models {
namespace {

TEST(Ensemble, CombineRulesByHand) {
  // One token, one column of three classes, two members.
  auto a = torch::tensor({1.0f, 2.0f, 3.0f}).view({1, 1, 3});
  auto b = torch::tensor({3.0f, 0.0f, -3.0f}).view({1, 1, 3});
  auto ml = combine_outputs({a, b}, Combine::MeanLogits, 1, 3);
  EXPECT_TRUE(torch::allclose(ml, torch::tensor({2.0f, 1.0f, 0.0f}).view({1, 1, 3})));
  auto mp = combine_outputs({a, b}, Combine::MeanProbs, 1, 3);
  auto mean_probs = (torch::softmax(a, -1) + torch::softmax(b, -1)) / 2;
  // Stored as log-probabilities: their softmax is the members' mean distribution, and they
  // are normalised already.
  EXPECT_TRUE(torch::allclose(torch::softmax(mp, -1), mean_probs, 1e-6, 1e-6));
  EXPECT_NEAR(mp.exp().sum().item<double>(), 1.0, 1e-6);
  // The two rules give different distributions.
  EXPECT_FALSE(torch::allclose(torch::softmax(ml, -1), mean_probs, 1e-3, 1e-3));
  // A lone output passes through unchanged.
  EXPECT_TRUE(torch::equal(combine_outputs({a}, Combine::MeanProbs, 1, 3), a));
  // Per column: two columns of three classes are normalised separately.
  auto two = torch::randn({2, 4, 6});
  auto two_b = torch::randn({2, 4, 6});
  auto c = combine_outputs({two, two_b}, Combine::MeanProbs, 2, 3).view({2, 4, 2, 3});
  EXPECT_TRUE(torch::allclose(c.exp().sum(-1), torch::ones({2, 4, 2}), 1e-5, 1e-5));
}

TEST(Ensemble, TaggerCombinesItsMembersAndNamesBadRules) {
  StudentConfig cfg;
  cfg.arch = "sru";
  cfg.vocab_size = 40;
  cfg.emb = 8;
  cfg.hidden = 6;
  cfg.columns = 2;
  cfg.classes = 5;
  cfg.dropout = 0.0;
  torch::manual_seed(1);
  auto m1 = std::make_shared<StudentTaggerImpl>(cfg);
  auto m2 = std::make_shared<StudentTaggerImpl>(cfg);
  m1->eval();
  m2->eval();
  auto ids = torch::randint(1, 40, {2, 5}, torch::kInt64);
  auto mask = torch::ones({2, 5}, torch::kInt64);
  EnsembleTaggerImpl e({m1, m2}, Combine::MeanProbs);
  EXPECT_EQ(e.columns, 2);
  EXPECT_EQ(e.classes, 5);
  auto want =
      combine_outputs({m1->infer(ids, mask), m2->infer(ids, mask)}, Combine::MeanProbs, 2, 5);
  EXPECT_TRUE(torch::allclose(e.infer(ids, mask), want, 1e-6, 1e-6));
  EXPECT_EQ(e.describe()["combine"], "mean_probs");
  EXPECT_EQ(e.describe()["members"].size(), 2u);
  // Its parameters are the members' together.
  EXPECT_EQ(count_parameters(e).total, 2 * count_parameters(*m1).total);

  cfg.classes = 3;
  auto other = std::make_shared<StudentTaggerImpl>(cfg);
  EXPECT_THROW(EnsembleTaggerImpl({m1, other}, Combine::MeanLogits), Error);
  try {
    combine_of("median", "run.json: params.combine");
    FAIL();
  } catch (const Error& err) {
    EXPECT_STREQ(err.what(), "run.json: params.combine: 'median' is not mean_logits or mean_probs");
  }
}

}  // namespace
}  // namespace kdx::models
