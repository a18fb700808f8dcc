// The execution context (device, precision) and what it changes in training: placement,
// bf16 autocast on a CPU, fp16 loss scaling with injected overflows, the SRU recurrence in
// fp32. Tests named Gpu* need a CUDA device and skip without one (tools/gpu-check runs them).
#include "workers/runtime/execution.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "common/error.h"
#include "common/json_io.h"
#include "tests/support/test_support.h"
#include "tests/workers/training/toy_ner.h"
#include "workers/models/bert.h"
#include "workers/models/bert_mlm.h"
#include "workers/models/sru.h"
#include "workers/runtime/loss_scaler.h"
#include "workers/runtime/torch_compat.h"
#include "workers/training/checkpoint.h"
#include "workers/training/mlm_task.h"
#include "workers/training/trainer.h"

namespace kdx::training {
namespace {

using test::error_of;

TEST(Execution, AutoIsTheRanksGpuWhenThereIsOneElseTheCpu) {
  int gpus = runtime::cuda_device_count();
  auto e = runtime::resolve_execution("auto", "auto", 3, "run.json: params");
  if (gpus == 0) {
    EXPECT_TRUE(e.device.is_cpu());
    EXPECT_EQ(e.amp, runtime::Amp::None);  // no mixed precision on a CPU unless asked
    EXPECT_EQ(e.describe(), "cpu");
  } else {
    EXPECT_EQ(e.device, torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(3 % gpus)));
    EXPECT_NE(e.amp, runtime::Amp::None);
  }
  auto cpu = runtime::resolve_execution("cpu", "bf16", 0, "run.json: params");
  EXPECT_TRUE(cpu.device.is_cpu());
  EXPECT_EQ(cpu.amp, runtime::Amp::Bf16);
  EXPECT_FALSE(cpu.loss_scaling);
}

TEST(Execution, BadValuesNameTheField) {
  EXPECT_EQ(error_of([] { runtime::resolve_execution("tpu", "auto", 0, "r.json: params"); }),
            "r.json: params.device: 'tpu' is not one of: auto, cpu, cuda");
  EXPECT_EQ(error_of([] { runtime::resolve_execution("cpu", "fp8", 0, "r.json: params"); }),
            "r.json: params.amp: 'fp8' is not one of: auto, none, bf16, fp16");
  EXPECT_EQ(error_of([] { runtime::resolve_execution("cpu", "fp16", 0, "r.json: params"); }),
            "r.json: params.amp: fp16 autocast runs on a GPU only; on a CPU use bf16 or none");
#if !defined(KDX_WITH_CUDA)
  EXPECT_EQ(error_of([] { runtime::resolve_execution("cuda", "auto", 0, "r.json: params"); }),
            "r.json: params.device: cuda was asked for, but this kdx-worker was built against a "
            "LibTorch without CUDA (see the README's GPU section: make cuda)");
#endif
}

TEST(Autocast, Bf16GuardRunsLinearInBf16AndRestoresTheState) {
  runtime::Execution e;
  e.amp = runtime::Amp::Bf16;
  torch::nn::Linear lin(8, 4);
  auto x = torch::randn({2, 8});
  EXPECT_FALSE(compat::autocast_enabled(c10::DeviceType::CPU));
  {
    runtime::AutocastGuard g(e);
    EXPECT_TRUE(compat::autocast_enabled(c10::DeviceType::CPU));
    EXPECT_EQ(lin(x).scalar_type(), torch::kBFloat16);
    {
      runtime::AutocastGuard inner(e);  // nesting keeps the outer state
    }
    EXPECT_TRUE(compat::autocast_enabled(c10::DeviceType::CPU));
  }
  EXPECT_FALSE(compat::autocast_enabled(c10::DeviceType::CPU));
  EXPECT_EQ(lin(x).scalar_type(), torch::kFloat32);
  runtime::Execution none;
  runtime::AutocastGuard off(none);
  EXPECT_EQ(lin(x).scalar_type(), torch::kFloat32);
}

TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterCleanSteps) {
  LossScalerState s;
  runtime::LossScalerOptions o;
  o.growth_interval = 3;
  runtime::update_scale(s, true, o);
  EXPECT_EQ(s.scale, 32768.0);
  EXPECT_EQ(s.skipped_steps, 1);
  for (int i = 0; i < 2; ++i) runtime::update_scale(s, false, o);
  EXPECT_EQ(s.scale, 32768.0);
  runtime::update_scale(s, false, o);
  EXPECT_EQ(s.scale, 65536.0);
  EXPECT_EQ(s.good_steps, 0);
  LossScalerState tiny;
  tiny.scale = 1.0 / 65536;
  runtime::update_scale(tiny, true, o);
  EXPECT_EQ(tiny.scale, 1.0 / 65536);  // clamped
}

TEST(LossScaler, UnscaleFindsInfAndNan) {
  auto p = torch::zeros({3}, torch::requires_grad());
  p.mutable_grad() = torch::tensor({2.0f, 4.0f, 8.0f});
  EXPECT_TRUE(runtime::unscale_gradients({p}, 2.0));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor({1.0f, 2.0f, 4.0f})));
  p.mutable_grad() = torch::tensor({1.0f, INFINITY, 1.0f});
  EXPECT_FALSE(runtime::unscale_gradients({p}, 2.0));
  p.mutable_grad() = torch::tensor({NAN, 1.0f, 1.0f});
  EXPECT_FALSE(runtime::unscale_gradients({p}, 2.0));
}

// A tagging task whose loss overflows (inf) at the chosen steps, as an fp16 forward does.
class OverflowingTask : public Task {
 public:
  OverflowingTask(TaggingTask& inner, std::vector<long> steps)
      : inner_(inner), steps_(std::move(steps)) {}
  size_t size() const override { return inner_.size(); }
  long tokens(size_t e) const override { return inner_.tokens(e); }
  StepLoss loss(const std::vector<int>& g, const std::vector<int>& m, long step,
                int epoch) override {
    auto l = inner_.loss(g, m, step, epoch);
    if (std::find(steps_.begin(), steps_.end(), step) != steps_.end())
      l.total = l.total * std::numeric_limits<float>::infinity();
    return l;
  }
  Evaluation evaluate() override { return inner_.evaluate(); }

 private:
  TaggingTask& inner_;
  std::vector<long> steps_;
};

std::map<std::string, torch::Tensor> weights_of(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

double max_difference(torch::nn::Module& m, const std::map<std::string, torch::Tensor>& w) {
  double d = 0;
  for (auto& p : m.named_parameters())
    d = std::max(d, (p.value() - w.at(p.key())).abs().max().item<double>());
  return d;
}

TEST(LossScaler, TrainerSkipsOverflowingStepsAndKeepsTheScaleInTheCheckpoint) {
  torch::set_num_threads(1);
  Toy toy;
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  auto opts = quick(1);
  opts.exec.loss_scaling = true;  // the fp16 path, driven on a CPU
  opts.checkpoint_dir = dir.file("ckpt");

  // Steps 0-based: 2 and 4 overflow. Stop after step 2 (index 1), then after step 3 (the
  // first overflow): the weights must not have moved.
  auto tagger = toy.student("lstm");
  TaggingTask inner(tagger, toy.data(), {});
  OverflowingTask task(inner, {2, 4});
  opts.max_steps = 2;
  Trainer(tagger, task, opts, *dist).run();
  auto before = weights_of(*tagger);
  opts.max_steps = 3;
  auto s = Trainer(tagger, task, opts, *dist).run();  // resumes at step 2, runs step index 2
  EXPECT_EQ(s.step, 3);
  EXPECT_EQ(s.scaler.skipped_steps, 1);
  EXPECT_EQ(s.scaler.scale, 32768.0);
  EXPECT_EQ(max_difference(*tagger, before), 0.0);
  auto state = parse_json(test::slurp(dir.file("ckpt/state.json")));
  EXPECT_EQ(state["version"], TrainingState::kVersion);
  EXPECT_EQ(state["loss_scaler"]["scale"], 32768.0);
  EXPECT_EQ(state["loss_scaler"]["skipped_steps"], 1);
  // The resumed run continues the same scale: a second overflow halves it again.
  opts.max_steps = 0;
  auto done = Trainer(tagger, task, opts, *dist).run();
  EXPECT_EQ(done.scaler.skipped_steps, 2);
  EXPECT_EQ(done.scaler.scale, 16384.0);
  EXPECT_GT(max_difference(*tagger, before), 0.0);  // the clean steps did train
}

TEST(LossScaler, ScaledTrainingMatchesUnscaledWithoutOverflow) {
  torch::set_num_threads(1);
  Toy toy;
  auto dist = distributed::make_single_process();
  auto plain = toy.student("sru");
  TaggingTask plain_task(plain, toy.data(), {});
  Trainer(plain, plain_task, quick(2), *dist).run();
  auto scaled = toy.student("sru");
  TaggingTask scaled_task(scaled, toy.data(), {});
  auto o = quick(2);
  o.exec.loss_scaling = true;
  auto s = Trainer(scaled, scaled_task, o, *dist).run();
  EXPECT_EQ(s.scaler.skipped_steps, 0);
  // Scaling by a power of two and back is exact in fp32 barring overflow.
  EXPECT_LT(max_difference(*scaled, weights_of(*plain)), 1e-5);
}

models::BertConfig tiny_bert(Toy& toy, int layers) {
  models::BertConfig c;
  c.vocab_size = static_cast<int>(toy.tok.vocab().size());
  c.hidden = 32;
  c.layers = layers;
  c.heads = 2;
  c.intermediate = 64;
  c.dropout = c.attention_dropout = 0.0;
  c.initializer_range = 0.05;
  return c;
}

// bf16 autocast on a CPU: every architecture (the three students and a BERT teacher) trains
// the toy set to the same dev F1 as fp32, within 1 point, mean of 2 seeds.
models::Tagger make_tagger(Toy& toy, const std::string& arch, uint64_t seed) {
  if (arch != "bert") {
    auto t = toy.student(arch);
    torch::manual_seed(seed);
    for (auto& p : t->parameters())
      if (p.dim() > 1) {
        torch::NoGradGuard g;
        p.add_(torch::randn_like(p) * 0.01);  // a seed-dependent start
      }
    return t;
  }
  torch::manual_seed(seed);
  return std::make_shared<models::BertTaggerImpl>(tiny_bert(toy, 2), 2, 3);
}

class Bf16Training : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16Training, DevF1WithinOnePointOfFp32) {
  torch::set_num_threads(2);
  const std::string arch = GetParam();
  // Few epochs: dev F1 still below 1, where a precision loss would show.
  const std::map<std::string, int> epochs = {{"lstm", 4}, {"sru", 3}, {"srupp", 1}, {"bert", 2}};
  double f1[2] = {0, 0};
  std::map<uint64_t, std::map<std::string, torch::Tensor>> fp32_weights;
  double moved = 0;
  for (int amp = 0; amp < 2; ++amp)
    for (uint64_t seed : {1, 2}) {
      Toy toy;
      auto tagger = make_tagger(toy, arch, seed);
      auto dist = distributed::make_single_process();
      auto o = quick(epochs.at(arch));
      if (arch == "bert") o.lr = 2e-3;
      o.seed = seed;
      o.exec.amp = amp ? runtime::Amp::Bf16 : runtime::Amp::None;
      TaggingTask task(tagger, toy.data(), {}, o.exec);
      auto s = Trainer(tagger, task, o, *dist).run();
      ASSERT_TRUE(std::isfinite(s.last_loss));
      f1[amp] += s.best_score / 2;
      if (amp == 0)
        fp32_weights[seed] = weights_of(*tagger);
      else
        moved = std::max(moved, max_difference(*tagger, fp32_weights[seed]));
    }
  std::printf("[ bf16     ] %s dev F1 fp32 %.4f, bf16 %.4f (weights differ by up to %.3g)\n",
              arch.c_str(), f1[0], f1[1], moved);
  EXPECT_GT(moved, 1e-4) << "the bf16 runs computed exactly what fp32 did: autocast was off";
  EXPECT_GT(f1[0], 0.3) << "the fp32 baseline must learn the toy set";
  EXPECT_NEAR(f1[1], f1[0], 0.01);
}

INSTANTIATE_TEST_SUITE_P(Archs, Bf16Training, ::testing::Values("lstm", "sru", "srupp", "bert"));

TEST(Bf16Pretraining, MaskedLanguageModelTrainsUnderAutocast) {
  torch::set_num_threads(2);
  Toy toy;
  auto data = make_mlm_data(toy.train_docs, toy.tok, 32, 10);
  torch::manual_seed(3);
  auto model = models::BertMlm(tiny_bert(toy, 1));
  MlmOptions mo;
  mo.exec.amp = runtime::Amp::Bf16;
  MlmTask task(model, data, mo);
  double before = task.evaluate().score;
  auto o = quick(4);
  o.lr = 3e-3;
  o.exec = mo.exec;
  auto dist = distributed::make_single_process();
  auto s = Trainer(model.ptr(), task, o, *dist).run();
  EXPECT_TRUE(std::isfinite(s.last_loss));
  EXPECT_GT(s.best_score, before + 0.1)
      << "held-out masked accuracy " << before << " -> " << s.best_score;
}

TEST(Sru, Bf16AutocastKeepsTheRecurrenceInFp32) {
  torch::manual_seed(3);
  models::SruOptions so;
  models::SruLayer layer(16, 8, so);
  auto x = torch::randn({2, 40, 16});
  auto mask = torch::ones({2, 40}, torch::kInt64);
  auto lengths = torch::tensor({40, 25}, torch::kInt64);
  auto ref = layer->forward(x, mask, lengths);
  runtime::Execution e;
  e.amp = runtime::Amp::Bf16;
  runtime::AutocastGuard g(e);
  auto h = layer->forward(x, mask, lengths);
  EXPECT_EQ(h.scalar_type(), torch::kFloat32);
  // Only the projection is in bf16 (8 bits of mantissa): close, not equal.
  EXPECT_LT((h - ref).abs().max().item<float>(), 0.05);
}

// --- a CUDA device ---------------------------------------------------------------------

#define NEED_GPU() \
  if (runtime::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

TEST(GpuSru, CudaRecurrenceMatchesTheCpuKernel) {
  NEED_GPU();
  for (int K : {3, 4}) {
    torch::manual_seed(11);
    auto U = torch::randn({3, 50, 2, 32, K}), x = torch::randn({3, 50, 64});
    auto v = torch::randn({2, 2, 32}) * 0.5, b = torch::randn({2, 2, 32}) * 0.5;
    auto lengths = torch::tensor({50, 31, 1}, torch::kInt64);
    auto Uc = U.clone().requires_grad_(), xc = x.clone().requires_grad_();
    auto vc = v.clone().requires_grad_(), bc = b.clone().requires_grad_();
    auto cuda = torch::Device(torch::kCUDA, 0);
    auto Ug = U.to(cuda).requires_grad_(), xg = x.to(cuda).requires_grad_();
    auto vg = v.to(cuda).requires_grad_(), bg = b.to(cuda).requires_grad_();
    auto hc = models::sru_bidirectional(Uc, xc, vc, bc, lengths, 1.3);
    auto hg = models::sru_bidirectional(Ug, xg, vg, bg, lengths, 1.3);
    EXPECT_LT((hc - hg.cpu()).abs().max().item<float>(), 1e-4) << "K " << K;
    auto w = torch::randn_like(hc);
    (hc * w).sum().backward();
    (hg * w.to(cuda)).sum().backward();
    EXPECT_LT((Uc.grad() - Ug.grad().cpu()).abs().max().item<float>(), 1e-4) << "K " << K;
    EXPECT_LT((vc.grad() - vg.grad().cpu()).abs().max().item<float>(), 1e-3) << "K " << K;
  }
}

TEST(GpuPlacement, StudentTrainsOnTheGpuAndItsCheckpointResumesOnTheCpu) {
  NEED_GPU();
  Toy toy;
  auto dist = distributed::make_single_process();
  test::TempDir dir;
  auto o = quick(2);
  o.exec = runtime::resolve_execution("cuda", "bf16", 0, "test");
  o.checkpoint_dir = dir.file("ckpt");
  o.max_steps = 5;
  auto tagger = toy.student("srupp");
  TaggingTask task(tagger, toy.data(), {}, o.exec);
  auto s = Trainer(tagger, task, o, *dist).run();
  EXPECT_EQ(s.step, 5);
  for (auto& p : tagger->parameters()) EXPECT_TRUE(p.is_cuda());
  // The same checkpoint, resumed by a CPU run: state mapped onto the CPU.
  auto cpu_tagger = toy.student("srupp");
  TaggingTask cpu_task(cpu_tagger, toy.data(), {});
  auto co = quick(2);
  co.checkpoint_dir = dir.file("ckpt");
  co.max_steps = 8;
  auto cs = Trainer(cpu_tagger, cpu_task, co, *dist).run();
  EXPECT_EQ(cs.step, 8);
  for (auto& p : cpu_tagger->parameters()) EXPECT_TRUE(p.is_cpu());
  // Full training on the GPU in bf16 reaches the fp32 CPU quality.
  auto g = toy.student("lstm");
  auto go = quick(6);
  go.exec = runtime::resolve_execution("cuda", "bf16", 0, "test");
  TaggingTask gt(g, toy.data(), {}, go.exec);
  EXPECT_GT(Trainer(g, gt, go, *dist).run().best_score, 0.9);
}

TEST(GpuPlacement, Fp16TrainsWithTheLossScaler) {
  NEED_GPU();
  Toy toy;
  auto dist = distributed::make_single_process();
  auto o = quick(6);
  o.exec = runtime::resolve_execution("cuda", "fp16", 0, "test");
  ASSERT_TRUE(o.exec.loss_scaling);
  auto tagger = toy.student("sru");
  TaggingTask task(tagger, toy.data(), {}, o.exec);
  auto s = Trainer(tagger, task, o, *dist).run();
  std::printf("[ fp16     ] dev F1 %.4f, loss scale %.0f, skipped %ld\n", s.best_score,
              s.scaler.scale, s.scaler.skipped_steps);
  EXPECT_GT(s.best_score, 0.9);
}

// Two ranks over NCCL (one GPU each) against one rank on the same global batch: the same
// losses and weights up to GPU reduction order.
TEST(GpuNccl, TwoRanksMatchOneRankOnTheSameGlobalBatch) {
  if (runtime::cuda_device_count() < 2) GTEST_SKIP() << "fewer than 2 CUDA devices";
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty()) << "no RuNNE data (KDX_DATA_DIR)";
  test::TempDir dir;
  nlohmann::json p = {{"arch", "bert"},
                      {"layers", 1},
                      {"hidden", 64},
                      {"heads", 2},
                      {"ffn", 128},
                      {"vocab_size", 2000},
                      {"lowercase", false},
                      {"dropout", 0.0},
                      {"seed", 3},
                      {"window", 64},
                      {"tagging", "per_type_bio"},
                      {"max_train_docs", 40},
                      {"max_test_docs", 3},
                      {"epochs", 2},
                      {"batch_size", 8},
                      {"lr", 0.001},
                      {"weight_decay", 0.01},
                      {"warmup_steps", 2},
                      {"grad_clip", 1.0},
                      {"patience", 0},
                      {"checkpoint_every", 1000},
                      {"threads", 1},
                      {"ranks", 1},
                      {"device", "cuda"},
                      {"amp", "none"}};
  auto losses = [&](const std::string& name, const std::vector<std::string>& extra) {
    auto spec = dir.write(name + "/run.json",
                          test::runne_run_json(data, name, "teacher", p, dir.file(name)).dump(2));
    std::vector<std::string> argv = {KDX_WORKER_BIN, "--spec", spec, "--no-latency"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = test::run_command(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (!extra.empty()) {
      EXPECT_NE(r.err.find("rank 0/2 (nccl), device cuda:0"), std::string::npos) << r.err;
    }
    std::vector<double> out;
    std::istringstream in(test::slurp(dir.file(name + "/metrics.jsonl")));
    for (std::string line; std::getline(in, line);)
      out.push_back(nlohmann::json::parse(line)["train_loss"].get<double>());
    return out;
  };
  auto one = losses("one", {}), two = losses("two", {"--nproc", "2"});
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(two.size(), 2u);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(one[i], two[i], 1e-4 * std::abs(one[i]));
}

}  // namespace
}  // namespace kdx::training
