#include "workers/models/lstm_train.h"

#include <gtest/gtest.h>

#include <tuple>

namespace kdx::models {
namespace {

struct Shape {
  int64_t batch, time, input, hidden;
};

// Against ATen's LSTM (one layer, one direction, batch-first, zero state): the outputs and
// every gradient, for hidden sizes the kernels do whole (16, 32), in part (20: 16 + 4) and not
// at all (12), batch 1 and time 1 among them.
TEST(LstmTrain, OutputsAndGradientsAreAtensLstm) {
  for (auto s : {Shape{3, 7, 5, 12}, Shape{2, 9, 8, 16}, Shape{1, 1, 4, 20}, Shape{4, 6, 10, 32},
                 Shape{1, 11, 3, 16}}) {
    SCOPED_TRACE(testing::Message() << "batch " << s.batch << " time " << s.time << " input "
                                    << s.input << " hidden " << s.hidden);
    torch::manual_seed(7);
    const int64_t N = 4 * s.hidden;
    auto make = [](std::vector<int64_t> shape) {
      return (torch::randn(shape) * 0.5).requires_grad_(true);
    };
    auto x = make({s.batch, s.time, s.input}), w_ih = make({N, s.input}),
         w_hh = make({N, s.hidden}), b_ih = make({N}), b_hh = make({N});
    auto up = torch::randn({s.batch, s.time, s.hidden});  // the loss's gradient
    std::vector<torch::Tensor> leaves = {x, w_ih, w_hh, b_ih, b_hh};
    auto grads_of = [&](const torch::Tensor& y) {
      auto g = torch::autograd::grad({y}, leaves, {up});
      return std::make_tuple(y.detach(), g);
    };
    auto h0 = torch::zeros({1, s.batch, s.hidden});
    auto [want, want_g] = grads_of(std::get<0>(
        torch::lstm(x, {h0, h0}, {w_ih, w_hh, b_ih, b_hh}, /*has_biases=*/true,
                    /*num_layers=*/1, /*dropout=*/0.0, /*train=*/true, /*bidirectional=*/false,
                    /*batch_first=*/true)));
    auto [got, got_g] = grads_of(lstm_train(x, w_ih, w_hh, b_ih, b_hh));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-5);
    EXPECT_GT(want.abs().max().item<float>(), 0.1);
    const char* names[] = {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (size_t i = 0; i < leaves.size(); ++i) {
      ASSERT_EQ(got_g[i].sizes(), want_g[i].sizes()) << names[i];
      float scale = want_g[i].abs().max().item<float>();
      if (i != 2 || s.time > 1) {  // one step: W_hh unused
        EXPECT_GT(scale, 1e-3) << names[i];
      }
      EXPECT_LT((got_g[i] - want_g[i]).abs().max().item<float>(), 1e-5 * std::max(1.f, scale))
          << names[i];
    }
  }
}

// The two bias gradients are two tensors: an in-place change of one leaves the other.
TEST(LstmTrain, BiasGradientsAreNotShared) {
  auto x = torch::randn({2, 3, 4});
  auto w_ih = torch::randn({32, 4}).requires_grad_(true),
       w_hh = torch::randn({32, 8}).requires_grad_(true),
       b_ih = torch::zeros({32}).requires_grad_(true),
       b_hh = torch::zeros({32}).requires_grad_(true);
  lstm_train(x, w_ih, w_hh, b_ih, b_hh).sum().backward();
  ASSERT_TRUE(torch::equal(b_ih.grad(), b_hh.grad()));
  b_ih.grad().mul_(0.5);
  EXPECT_FALSE(torch::equal(b_ih.grad(), b_hh.grad()));
}

TEST(LstmTrain, ServesFloatOnTheCpuOnly) {
  auto w = torch::zeros({4, 1});
  EXPECT_TRUE(lstm_train_serves(torch::zeros({1, 2, 3}), w));
  EXPECT_FALSE(lstm_train_serves(torch::zeros({1, 2, 3}, torch::kFloat64), w));
  EXPECT_FALSE(lstm_train_serves(torch::zeros({1, 2, 3}), w.to(torch::kBFloat16)));
}

}  // namespace
}  // namespace kdx::models
