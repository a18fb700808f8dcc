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
  in.x = torch::randn({B, T, D}).requires_grad_();
  in.v = (torch::randn({2, 2, D}) * 0.5).requires_grad_();
  in.b = (torch::randn({2, 2, D}) * 0.5).requires_grad_();
  in.lengths = torch::tensor(lengths, torch::kInt64);
  return in;
}

// K = 3: the highway input is x itself (shared by both directions); K = 4: its own projection.
class SruGradient : public ::testing::TestWithParam<int> {};

TEST_P(SruGradient, CustomBackwardMatchesNaive) {
  int K = GetParam();
  auto a = random_inputs(3, 9, 5, K, {9, 4, 1});  // full, padded and length-1 sequences
  auto b = random_inputs(3, 9, 5, K, {9, 4, 1});
  auto ha = sru_bidirectional(a.U, a.x, a.v, a.b, a.lengths);
  auto hb = sru_bidirectional_naive(b.U, b.x, b.v, b.b, b.lengths);
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

INSTANTIATE_TEST_SUITE_P(HighwayKinds, SruGradient, ::testing::Values(3, 4));

TEST(SruLayer, BidirectionalShapesAndSruPlusPlus) {
  for (int attn : {0, 16}) {
    SruLayer layer(12, 8, attn);
    auto x = torch::randn({2, 6, 12});
    auto mask = torch::ones({2, 6}, torch::kInt64);
    mask[1].narrow(0, 4, 2).zero_();
    auto lengths = mask.sum(1);
    auto y = layer->forward(x, mask, lengths);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 6, 16}));
    y.sum().backward();
    for (auto& p : layer->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.f) << p.key();
    }
  }
}

}  // namespace
}  // namespace kdx::models
