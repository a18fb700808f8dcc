#include "workers/models/sru.h"

#include <gtest/gtest.h>

namespace kdx::models {
namespace {

struct Inputs {
  torch::Tensor U, x, v, b, lengths;
};

Inputs random_inputs(int64_t B, int64_t T, int64_t D, int64_t K, std::vector<int64_t> lengths) {
  torch::manual_seed(7);
  Inputs in;
  in.U = torch::randn({B, T, 2, D, K}).requires_grad_();
  in.x = torch::randn({B, T, 2 * D}).requires_grad_();
  in.v = (torch::randn({2, 2, D}) * 0.5).requires_grad_();
  in.b = (torch::randn({2, 2, D}) * 0.5).requires_grad_();
  in.lengths = torch::tensor(lengths, torch::kInt64);
  return in;
}

// K = 3: the highway input is x itself (each direction its half); K = 4: its own projection.
// The second value is the highway scale (1, or the reference's rescale).
class SruGradient : public ::testing::TestWithParam<std::tuple<int, double>> {};

TEST_P(SruGradient, CustomBackwardMatchesNaive) {
  auto [K, scale] = GetParam();
  auto a = random_inputs(3, 9, 5, K, {9, 4, 1});  // full, padded and length-1 sequences
  auto b = random_inputs(3, 9, 5, K, {9, 4, 1});
  auto ha = sru_bidirectional(a.U, a.x, a.v, a.b, a.lengths, scale);
  auto hb = sru_bidirectional_naive(b.U, b.x, b.v, b.b, b.lengths, scale);
  ASSERT_EQ(ha.sizes(), (std::vector<int64_t>{3, 9, 2, 5}));
  ASSERT_TRUE(torch::allclose(ha, hb, 1e-5, 1e-6)) << (ha - hb).abs().max().item<float>();
  auto weights = torch::randn_like(ha);
  (ha * weights).sum().backward();
  (hb * weights).sum().backward();
  std::vector<std::tuple<torch::Tensor, torch::Tensor, const char*>> grads = {
      {a.U.grad(), b.U.grad(), "U"}, {a.v.grad(), b.v.grad(), "v"}, {a.b.grad(), b.b.grad(), "b"}};
  if (K == 3) grads.emplace_back(a.x.grad(), b.x.grad(), "x");
  for (auto& [ga, gb, name] : grads) {
    ASSERT_TRUE(ga.defined() && gb.defined()) << name;
    EXPECT_LT((ga - gb).abs().max().item<float>(), 1e-4) << name;
  }
  // Padding positions output zeros and receive no gradient.
  EXPECT_EQ(ha[2].narrow(0, 1, 8).abs().sum().item<float>(), 0.f);
  EXPECT_EQ(a.U.grad()[1].narrow(0, 4, 5).abs().sum().item<float>(), 0.f);
}

INSTANTIATE_TEST_SUITE_P(HighwayKinds, SruGradient,
                         ::testing::Combine(::testing::Values(3, 4),
                                            ::testing::Values(1.0, std::sqrt(3.0))));

// The highway input of direction d is the d-th half of x: changing the second half of x at
// one step changes only direction 1's output there (K = 3).
TEST(SruKernel, EachDirectionReadsItsHalfOfTheInput) {
  auto in = random_inputs(1, 4, 3, 3, {4});
  auto h1 = sru_bidirectional(in.U, in.x, in.v, in.b, in.lengths);
  auto x2 = in.x.detach().clone();
  x2[0][2].narrow(0, 3, 3).add_(1.0);
  auto h2 = sru_bidirectional(in.U, x2, in.v, in.b, in.lengths);
  auto diff = (h1 - h2).abs();  // [1, 4, 2, 3]
  EXPECT_EQ(diff.select(2, 0).sum().item<float>(), 0.f);
  EXPECT_GT(diff[0][2][1].sum().item<float>(), 0.f);
  EXPECT_EQ(diff[0][1][1].sum().item<float>() + diff[0][3][1].sum().item<float>(), 0.f);
}

// The reference's rule: a layer projects its highway input (K = 4) exactly when its input
// is not as wide as its bidirectional output; its initialisation follows the reference.
TEST(SruLayer, ProjectionRuleAndReferenceInitialisation) {
  torch::manual_seed(3);
  SruOptions o;
  o.highway_bias = -2.0;
  SruLayer first(40, 64, o), second(128, 64, o);
  EXPECT_EQ(first->blocks, 4);
  EXPECT_EQ(second->blocks, 3);
  auto w = second->W->weight.view({2, 64, 3, 128});
  // x~ block: variance 1/d; gate blocks: half of it.
  EXPECT_NEAR(w.select(2, 0).var().item<double>(), 1.0 / 128, 0.15 / 128);
  EXPECT_NEAR(w.select(2, 1).var().item<double>(), 0.5 / 128, 0.1 / 128);
  EXPECT_NEAR(second->v.var().item<double>(), 0.5, 0.15);
  EXPECT_EQ(second->b.select(1, 0).abs().sum().item<float>(), 0.f);  // forget bias 0
  EXPECT_TRUE(second->b.select(1, 1).eq(-2.0).all().item<bool>());   // reset/highway bias
  o.rescale = true;
  SruLayer scaled(128, 64, o);
  EXPECT_NEAR(scaled->scale_x, std::sqrt(1 + 2 * std::exp(-2.0)), 1e-12);
}

TEST(SruLayer, BidirectionalShapesAndSruPlusPlus) {
  for (int attn : {0, 16}) {
    SruOptions o;
    o.attention_dim = attn;
    SruLayer layer(12, 8, o);
    auto x = torch::randn({2, 6, 12});
    auto mask = torch::ones({2, 6}, torch::kInt64);
    mask[1].narrow(0, 4, 2).zero_();
    auto lengths = mask.sum(1);
    auto y = layer->forward(x, mask, lengths);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 6, 16}));
    y.sum().backward();
    for (auto& p : layer->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      // With alpha at its rezero start of 0, k and v get no gradient in the first step.
      if (attn && (p.key() == "k.weight" || p.key() == "v_proj.weight")) continue;
      EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.f) << p.key();
    }
  }
}

}  // namespace
}  // namespace kdx::models
