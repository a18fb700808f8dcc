// The fused inference kernels (recurrent_kernels.h) against the students' training forward:
// every architecture at hidden sizes the kernels take (multiples of 16, an odd number of
// 64-column panels included), padded rows, batch 1 and batches wider than a register block,
// several layers, SRU's rescaled highway and SRU++'s attention; and the packing on its own.
#include "workers/models/recurrent_kernels.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "workers/models/student.h"

namespace kdx::models {
namespace {

TEST(RecurrentKernels, ThisMachineHasThem) {
  // CI and the cluster are x86-64 with AVX2 at least; without the kernels infer() would
  // silently test only its fallback.
  EXPECT_TRUE(kernels::available()) << "no AVX2/AVX-512 kernels on this CPU";
}

TEST(RecurrentKernels, PackingKeepsEveryWeight) {
  if (!kernels::available()) GTEST_SKIP() << "no kernels";
  const int64_t n = 192, k = 5;  // 128 + 64 columns: a full panel and an odd one
  std::vector<float> w(static_cast<size_t>(n * k));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  auto m = kernels::pack_transposed(w.data(), n, k);
  std::vector<float> sorted(m.data.begin(), m.data.end());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data.data()) % 64, 0u);  // one cache line per load
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, w);
  EXPECT_THROW(kernels::pack_transposed(w.data(), 100, 5), std::invalid_argument);
}

struct Case {
  std::string arch;
  int hidden, layers, emb;
  bool rescale;
  bool residual = false;  // LSTM: layers after the first add their input
};

class FusedInference : public ::testing::TestWithParam<Case> {};

TEST_P(FusedInference, MatchesTrainingForward) {
  if (!kernels::available()) GTEST_SKIP() << "no kernels";
  auto p = GetParam();
  StudentConfig c;
  c.arch = p.arch;
  c.vocab_size = 60;
  c.emb = p.emb;
  c.hidden = p.hidden;
  c.layers = p.layers;
  c.columns = 3;
  c.classes = 5;
  c.dropout = 0.0;
  c.rescale = p.rescale;
  c.residual = p.residual;
  c.highway_bias = -1.0;
  torch::manual_seed(11);
  StudentTaggerImpl m(c);
  {
    torch::NoGradGuard g;  // weights far from their initial constants
    for (auto& q : m.named_parameters()) q.value().add_(torch::randn_like(q.value()) * 0.3);
  }
  m.eval();
  const int64_t B = 7, T = 19;  // 7 rows: blocks of 2 and a lone row
  auto ids = torch::randint(1, 60, {B, T}, torch::kInt64);
  auto mask = torch::ones({B, T}, torch::kInt64);
  const int64_t lengths[B] = {19, 1, 12, 19, 5, 18, 2};
  for (int64_t b = 0; b < B; ++b) mask[b].narrow(0, lengths[b], T - lengths[b]).zero_();
  auto want = m.forward(ids, mask).detach();
  auto valid = mask.unsqueeze(-1).to(torch::kFloat32);
  m.lstm_kernel = "fused";
  auto got = m.infer(ids, mask);
  EXPECT_LT(((want - got) * valid).abs().max().item<float>(), 1e-4);
  EXPECT_GT(want.abs().max().item<float>(), 0.1);  // not a comparison of zeros
  for (int64_t b : {0L, 1L, 4L}) {                 // batch 1, the matrix-vector path
    auto one_ids = ids.narrow(0, b, 1), one_mask = mask.narrow(0, b, 1);
    auto one = m.infer(one_ids, one_mask);
    EXPECT_LT(((want.narrow(0, b, 1) - one) * one_mask.unsqueeze(-1)).abs().max().item<float>(),
              1e-4)
        << "row " << b;
  }
  // A weight update is seen: the packed matrices are rebuilt, not reused.
  {
    torch::NoGradGuard g;
    for (auto& q : m.named_parameters()) q.value().mul_(0.5);
  }
  auto want2 = m.forward(ids, mask).detach();
  EXPECT_LT(((want2 - m.infer(ids, mask)) * valid).abs().max().item<float>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Archs, FusedInference,
    ::testing::Values(Case{"lstm", 16, 1, 8, false}, Case{"lstm", 48, 2, 20, false},
                      Case{"lstm", 64, 1, 24, false}, Case{"lstm", 32, 3, 16, false, true},
                      Case{"sru", 16, 2, 8, false}, Case{"sru", 32, 2, 64, true},
                      Case{"srupp", 16, 1, 12, false}, Case{"srupp", 32, 2, 24, true}),
    [](const auto& info) {
      return info.param.arch + "_h" + std::to_string(info.param.hidden) + "_l" +
             std::to_string(info.param.layers) + (info.param.rescale ? "_rescale" : "") +
             (info.param.residual ? "_residual" : "");
    });

// Two threads: side by side (batch 2, any size) and split by hidden units (batch 1 at hidden 512:
// one direction's W_hh, 4 MiB, is larger than half of any L2 this runs on) give the one-thread
// result exactly (the same arithmetic per column), and the training forward's within 1e-4.
TEST(FusedInference, TwoThreadsGiveTheOneThreadResult) {
  if (!kernels::available()) GTEST_SKIP() << "no kernels";
  EXPECT_TRUE(kernels::split_steps(1, 512, 2));
  EXPECT_FALSE(kernels::split_steps(1, 512, 1));
  EXPECT_FALSE(kernels::split_steps(32, 512, 2));
  EXPECT_FALSE(kernels::split_steps(1, 64, 2));
  for (int hidden : {64, 512}) {
    StudentConfig c;
    c.arch = "lstm";
    c.vocab_size = 40;
    c.emb = 16;
    c.hidden = hidden;
    c.columns = 2;
    c.classes = 3;
    c.dropout = 0.0;
    torch::manual_seed(5);
    StudentTaggerImpl m(c);
    m.eval();
    m.lstm_kernel = "fused";
    for (int64_t batch : {1, 2}) {
      const int64_t T = 23;
      auto ids = torch::randint(1, 40, {batch, T}, torch::kInt64);
      auto mask = torch::ones({batch, T}, torch::kInt64);
      if (batch == 2) mask[1].narrow(0, 9, T - 9).zero_();
      m.lstm_threads = 1;
      auto one = m.infer(ids, mask);
      m.lstm_threads = 2;
      auto two = m.infer(ids, mask);
      auto valid = mask.unsqueeze(-1).to(torch::kFloat32);
      EXPECT_EQ(((one - two) * valid).abs().max().item<float>(), 0.f)
          << "hidden " << hidden << " batch " << batch;
      auto want = m.forward(ids, mask).detach();
      EXPECT_LT(((want - two) * valid).abs().max().item<float>(), 1e-4)
          << "hidden " << hidden << " batch " << batch;
      EXPECT_GT(want.abs().max().item<float>(), 0.01);
    }
  }
}

TEST(FusedInference, ExplicitFusedOnAnOddHiddenSizeIsAnError) {
  StudentConfig c;
  c.arch = "lstm";
  c.vocab_size = 20;
  c.emb = 8;
  c.hidden = 12;
  StudentTaggerImpl m(c);
  m.eval();
  m.lstm_kernel = "fused";
  auto ids = torch::ones({1, 4}, torch::kInt64);
  try {
    m.infer(ids, torch::ones_like(ids));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a hidden size that is a multiple of 16 (this model: 12)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kdx::models
