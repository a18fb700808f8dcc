// The pretrain stage against its peer, in one run: masked-language-model training tokens/s
// of kdx (BertMlm + the MlmTask loss + AdamW, as the stage runs them) vs the same model,
// batch, masking rate, loss and optimizer in Python PyTorch (pretrain.py, Debian's torch),
// as a ratio. Model: BERT 4 x 256, 4 heads, FFN 1024, vocabulary 16,000, batch 32 x 128.
// Threads: KDX_BENCH_THREADS (default 1) for both sides.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/bench/peer.h"
#include "workers/models/bert_mlm.h"

namespace {

constexpr int kVocab = 16000, kHidden = 256, kLayers = 4, kHeads = 4, kFfn = 1024, kBatch = 32,
              kLen = 128;
int threads() {
  const char* t = std::getenv("KDX_BENCH_THREADS");
  return t ? std::atoi(t) : 1;
}
std::map<std::string, double> g_tps;

void BM_PretrainCpp(benchmark::State& state) {
  torch::set_num_threads(threads());
  kdx::models::BertConfig c;
  c.vocab_size = kVocab;
  c.hidden = kHidden;
  c.layers = kLayers;
  c.heads = kHeads;
  c.intermediate = kFfn;
  torch::manual_seed(1);
  auto m = kdx::models::BertMlm(c);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.01));
  auto ids = torch::randint(5, kVocab, {kBatch, kLen}, torch::kInt64);
  auto mask = torch::ones({kBatch, kLen}, torch::kInt64);
  int64_t n = static_cast<int64_t>(0.15 * kBatch * kLen + 0.5);
  auto positions = torch::randperm(kBatch * kLen, torch::kInt64).narrow(0, 0, n);
  auto targets = ids.reshape({-1}).index_select(0, positions);
  auto step = [&] {
    auto logits = m->forward(ids, mask, positions);
    auto loss = torch::nn::functional::cross_entropy(
                    logits, targets,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                static_cast<double>(n);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(m->parameters(), 1.0);
    opt.step();
    opt.zero_grad();
  };
  step();
  for (auto _ : state) step();
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatch * kLen, benchmark::Counter::kIsRate);
}

void BM_PretrainPython(benchmark::State& state) {
  for (auto _ : state) {
    std::string cmd = "/usr/bin/python3 " KDX_SOURCE_DIR
                      "/tools/bench/pretrain.py --steps 6 --threads " +
                      std::to_string(threads());
    std::string out;
    auto j = kdx::bench::run_peer(cmd, out);
    if (!j.is_object()) {
      state.SkipWithError(("python peer failed: " + out).c_str());
      return;
    }
    state.SetIterationTime(j["seconds_per_step"].get<double>());
    g_tps["python"] = j["tokens_per_s"].get<double>();
  }
  state.counters["tokens/s"] = g_tps["python"];
}

// Reports the kdx / Python ratio from the two rates measured in this run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (auto& r : runs) {
      auto it = r.counters.find("tokens/s");
      if (it == r.counters.end()) continue;
      double v = it->second.value;
      if (r.benchmark_name().find("cpp") != std::string::npos) g_tps["cpp"] = v;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    if (g_tps.count("cpp") && g_tps.count("python") && g_tps["python"] > 0)
      std::printf(
          "\npretraining tokens/s, %d thread(s): kdx %.0f, Python %.0f, kdx / Python %.2fx (goal "
          ">= 1.0x)\n",
          threads(), g_tps["cpp"], g_tps["python"], g_tps["cpp"] / g_tps["python"]);
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("Pretrain/cpp", BM_PretrainCpp)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(5.0);
  benchmark::RegisterBenchmark("Pretrain/python", BM_PretrainPython)
      ->Unit(benchmark::kMillisecond)
      ->UseManualTime()
      ->Iterations(1);
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  return 0;
}
