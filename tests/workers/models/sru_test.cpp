#include "workers/models/sru.h"

#include <gtest/gtest.h>

namespace kdx::models {
namespace {

struct Inputs {
  torch::Tensor U, xh, v, b, lengths;
};

Inputs random_inputs(int64_t T, int64_t B, int64_t D, std::vector<int64_t> lengths) {
  torch::manual_seed(7);
  Inputs in;
  in.U = torch::randn({T, B, D, 3}).requires_grad_();
  in.xh = torch::randn({T, B, D}).requires_grad_();
  in.v = (torch::randn({2, D}) * 0.5).requires_grad_();
  in.b = (torch::randn({2, D}) * 0.5).requires_grad_();
  in.lengths = torch::tensor(lengths, torch::kInt64);
  return in;
}

class SruGradient : public ::testing::TestWithParam<bool> {};

TEST_P(SruGradient, CustomBackwardMatchesNaive) {
  bool reverse = GetParam();
  auto a = random_inputs(9, 3, 5, {9, 4, 1});  // full, padded and length-1 sequences
  auto b = random_inputs(9, 3, 5, {9, 4, 1});
  auto ha = sru_recurrence(a.U, a.xh, a.v, a.b, a.lengths, reverse);
  auto hb = sru_recurrence_naive(b.U, b.xh, b.v, b.b, b.lengths, reverse);
  ASSERT_TRUE(torch::allclose(ha, hb, 1e-5, 1e-6)) << (ha - hb).abs().max().item<float>();
  auto weights = torch::randn_like(ha);
  (ha * weights).sum().backward();
  (hb * weights).sum().backward();
  for (auto [ga, gb, name] : {std::tuple{a.U.grad(), b.U.grad(), "U"}, {a.xh.grad(), b.xh.grad(), "xh"},
                              {a.v.grad(), b.v.grad(), "v"}, {a.b.grad(), b.b.grad(), "b"}})
    EXPECT_LT((ga - gb).abs().max().item<float>(), 1e-4) << name;
  // Padding positions output zeros and receive no gradient.
  EXPECT_EQ(ha.select(1, 2).narrow(0, 1, 8).abs().sum().item<float>(), 0.f);
  EXPECT_EQ(a.U.grad().select(1, 1).narrow(0, 4, 5).abs().sum().item<float>(), 0.f);
}

INSTANTIATE_TEST_SUITE_P(Directions, SruGradient, ::testing::Values(false, true));

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
