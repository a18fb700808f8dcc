// Students against their peers, in one run:
//  - training tokens/s of each student (kdx, C++) vs the identical model, batch and loss in
//    Python PyTorch (students.py, Debian's torch), as a ratio;
//  - CPU latency at batch 1 x 128 tokens of each student's deployed path (infer()) vs a
//    BERT-base-shaped teacher (12 layers, 768 hidden, vocabulary 30,522), as a speed-up,
//    with the parameter ratio;
//  - the same latency against the identical model in Python PyTorch in inference mode
//    (students.py --infer: nn.LSTM, SRU/SRU++ as per-step PyTorch code), as a ratio.
// Threads: KDX_BENCH_THREADS (default 1) for both sides.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/bench/peer.h"
#include "workers/models/bert.h"
#include "workers/models/student.h"

namespace {

constexpr int kVocab = 30522, kColumns = 29, kBatch = 32, kLen = 128;
int threads() {
  const char* t = std::getenv("KDX_BENCH_THREADS");
  return t ? std::atoi(t) : 1;
}

struct Size {
  const char* name;
  int emb, hidden;
};
const Size kSizes[] = {{"small", 64, 128}, {"base", 128, 256}, {"large", 300, 512}};
constexpr int kNumSizes = 3;
const char* kArchs[] = {"lstm", "sru", "srupp"};

std::shared_ptr<kdx::models::StudentTaggerImpl> student(const std::string& arch, const Size& s) {
  kdx::models::StudentConfig c;
  c.arch = arch;
  c.vocab_size = kVocab;
  c.emb = s.emb;
  c.hidden = s.hidden;
  c.columns = kColumns;
  c.classes = 3;
  torch::manual_seed(1);
  return std::make_shared<kdx::models::StudentTaggerImpl>(c);
}

std::map<std::string, double> g_value;  // results for the ratio table

void BM_TrainCpp(benchmark::State& state, std::string arch) {
  torch::set_num_threads(threads());
  auto m = student(arch, kSizes[1]);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
  auto ids = torch::randint(5, kVocab, {kBatch, kLen}, torch::kInt64);
  auto mask = torch::ones({kBatch, kLen}, torch::kInt64);
  auto tags = torch::randint(0, 3, {kBatch * kLen * kColumns}, torch::kInt64);
  auto step = [&] {
    auto logits = m->forward(ids, mask);
    auto loss = torch::nll_loss(torch::log_softmax(logits.reshape({-1, 3}), -1), tags);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(m->parameters(), 1.0);
    opt.step();
    opt.zero_grad();
  };
  step();
  for (auto _ : state) step();
  double tps = static_cast<double>(state.iterations()) * kBatch * kLen;
  state.counters["tokens/s"] = benchmark::Counter(tps, benchmark::Counter::kIsRate);
  g_value["cpp_train_s_" + arch] = 0;  // filled from the rate below
}

void BM_TrainPython(benchmark::State& state, std::string arch) {
  for (auto _ : state) {
    std::string cmd = "/usr/bin/python3 " KDX_SOURCE_DIR "/tools/bench/students.py --arch " + arch +
                      " --steps 8 --threads " + std::to_string(threads());
    std::string out;
    auto j = kdx::bench::run_peer(cmd, out);
    if (!j.is_object()) {
      state.SkipWithError(("python peer failed: " + out).c_str());
      return;
    }
    state.SetIterationTime(j["seconds_per_step"].get<double>());
    g_value["py_tps_" + arch] = j["tokens_per_s"].get<double>();
  }
  state.counters["tokens/s"] = g_value["py_tps_" + arch];
}

void BM_Latency(benchmark::State& state, std::string arch, int size) {
  torch::set_num_threads(threads());
  std::shared_ptr<kdx::models::TaggerImpl> m;
  if (arch == "bert-base") {
    kdx::models::BertConfig c;
    c.vocab_size = kVocab;
    c.hidden = 768;
    c.layers = 12;
    c.heads = 12;
    c.intermediate = 3072;
    m = std::make_shared<kdx::models::BertTaggerImpl>(c, kColumns, 3);
  } else {
    m = student(arch, kSizes[size]);
  }
  m->eval();
  auto ids = torch::randint(5, kVocab, {1, kLen}, torch::kInt64);
  auto mask = torch::ones({1, kLen}, torch::kInt64);
  m->infer(ids, mask);
  for (auto _ : state) benchmark::DoNotOptimize(m->infer(ids, mask).data_ptr());
  std::string key = arch + (arch == "bert-base" ? "" : std::string("/") + kSizes[size].name);
  g_value["params_" + key] = static_cast<double>(kdx::models::parameter_count(*m));
  state.counters["params"] = g_value["params_" + key];
}

// The Python side times itself (students.py --infer) for a second per process.
void BM_LatencyPython(benchmark::State& state, std::string arch, int size) {
  for (auto _ : state) {
    std::string cmd =
        "/usr/bin/python3 " KDX_SOURCE_DIR "/tools/bench/students.py --infer --arch " + arch +
        " --batch 1 --len " + std::to_string(kLen) + " --emb " + std::to_string(kSizes[size].emb) +
        " --hidden " + std::to_string(kSizes[size].hidden) + " --vocab " + std::to_string(kVocab) +
        " --columns " + std::to_string(kColumns) + " --threads " + std::to_string(threads());
    std::string out;
    auto j = kdx::bench::run_peer(cmd, out);
    if (!j.is_object()) {
      state.SkipWithError(("python peer failed: " + out).c_str());
      return;
    }
    state.SetIterationTime(j["ms_per_call"].get<double>() / 1e3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (auto arch : kArchs) {
    benchmark::RegisterBenchmark(("Train/cpp/" + std::string(arch)).c_str(), BM_TrainCpp, arch)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
    benchmark::RegisterBenchmark(("Train/python/" + std::string(arch)).c_str(), BM_TrainPython,
                                 arch)
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime()
        ->Iterations(1);
  }
  benchmark::RegisterBenchmark("Latency/bert-base", BM_Latency, "bert-base", 0)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(3.0);
  // kdx and Python alternate per model (A B A B over the table), so drift hits both.
  for (int s = 0; s < kNumSizes; ++s)
    for (auto arch : kArchs) {
      std::string key = std::string(arch) + "/" + kSizes[s].name;
      benchmark::RegisterBenchmark(("Latency/" + key).c_str(), BM_Latency, arch, s)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
      benchmark::RegisterBenchmark(("LatencyPython/" + key).c_str(), BM_LatencyPython, arch, s)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime()
          ->Iterations(1);
    }

  // A reporter that keeps each run's real time for the ratio table.
  struct Keep : benchmark::ConsoleReporter {
    void ReportRuns(const std::vector<Run>& runs) override {
      ConsoleReporter::ReportRuns(runs);
      for (auto& r : runs) times[r.benchmark_name()] = r.GetAdjustedRealTime();
    }
    std::map<std::string, double> times;
  } reporter;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks(&reporter);

  auto t = [&](const std::string& name) {
    for (auto& [k, v] : reporter.times)
      if (k.rfind(name, 0) == 0) return v;
    return 0.0;
  };
  std::printf(
      "\nthreads: %d\n| student | train tokens/s kdx | train tokens/s Python | kdx / Python "
      "|\n|---|---|---|---|\n",
      threads());
  for (auto arch : kArchs) {
    double cpp = t("Train/cpp/" + std::string(arch)), py = t("Train/python/" + std::string(arch));
    if (cpp > 0 && py > 0)
      std::printf("| %s | %.0f | %.0f | %.2fx |\n", arch, kBatch * kLen / (cpp / 1e3),
                  kBatch * kLen / (py / 1e3), py / cpp);
  }
  double bert = t("Latency/bert-base");
  std::printf(
      "\n| model | params | params ratio | latency b=1, 128 tok (ms) | speed-up vs BERT-base "
      "|\n|---|---|---|---|---|\n");
  std::printf("| bert-base | %.1fM | 1x | %.2f | 1x |\n", g_value["params_bert-base"] / 1e6, bert);
  for (int s = 0; s < kNumSizes; ++s)
    for (auto arch : kArchs) {
      std::string key = std::string(arch) + "/" + kSizes[s].name;
      double ms = t("Latency/" + key);
      std::printf("| %s (emb %d, hidden %d) | %.2fM | %.1fx | %.2f | %.1fx |\n", arch,
                  kSizes[s].emb, kSizes[s].hidden, g_value["params_" + key] / 1e6,
                  g_value["params_bert-base"] / g_value["params_" + key], ms, bert / ms);
    }
  std::printf(
      "\n| student (emb, hidden) | kdx infer() ms | Python inference_mode ms | kdx / Python "
      "|\n|---|---|---|---|\n");
  for (int s = 0; s < kNumSizes; ++s)
    for (auto arch : kArchs) {
      std::string key = std::string(arch) + "/" + kSizes[s].name;
      double ms = t("Latency/" + key), py = t("LatencyPython/" + key);
      if (ms > 0 && py > 0)
        std::printf("| %s (%d, %d) | %.2f | %.2f | %.2fx |\n", arch, kSizes[s].emb,
                    kSizes[s].hidden, ms, py, py / ms);
    }
  return 0;
}
