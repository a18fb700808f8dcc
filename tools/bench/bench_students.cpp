// Students against what a user would pick instead, in one run, same shapes, same threads:
//  - training tokens/s of each student (kdx, C++) vs the identical model, batch, loss and
//    optimizer in Python: Debian's PyTorch 1.13, PyPI's PyTorch 2.x (eager, and
//    torch.compile for the LSTM), and for SRU/SRU++ the reference `sru` package;
//  - CPU latency at batch 1 x 128 tokens of each student's deployed path (infer()) vs a
//    BERT-base-shaped teacher (12 layers, 768 hidden, vocabulary 30,522), as a speed-up,
//    with the parameter ratio;
//  - the same latency, and at batch 32 x 128, against the student exported as kdx exports it
//    and converted by tools/onnx-export, in ONNX Runtime (SRU/SRU++: Scan and unrolled), against
//    PyTorch 2.x and 1.13 in inference mode and the `sru` package's inference kernel, beside a
//    roofline measured here (the run's own GEMM peak and cache bandwidths);
// Python peers come from tools/bench/peers-env (pinned, created once). Threads:
// KDX_BENCH_THREADS (default 1) for every side.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/bench/peer.h"
#include "workers/models/bert.h"
#include "workers/models/recurrent_kernels.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"

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
nlohmann::json g_peers;                 // tools/bench/peers-env's answer
std::string g_peer_error;
std::string g_export_root;

// "PATH=... PYTHONPATH=... <python> -W ignore" for a peer environment's python.
std::string python_of(const char* which) {
  std::string pp = g_peers.value("pythonpath", "");
  return "PATH=" + pp + "/bin:$PATH PYTHONPATH=" + pp + " " + g_peers.value(which, "") +
         " -W ignore ";
}

// The student of (arch, size) as `kdx-worker export` writes its model: model.json and
// model.safetensors, for tools/onnx-export (via tools/bench/ort.py).
std::string export_dir(const std::string& arch, int size) {
  std::string dir = g_export_root + "/" + arch + "-" + kSizes[size].name;
  if (std::filesystem::exists(dir + "/model.json")) return dir;
  std::filesystem::create_directories(dir);
  auto m = student(arch, kSizes[size]);
  kdx::training::save_weights(*m, dir + "/model.safetensors");
  std::ofstream(dir + "/model.json") << m->describe().dump(2) << "\n";
  return dir;
}

// A peer that times itself and prints {"ms_per_call": ...} (or seconds_per_step for training).
void run_timed_peer(benchmark::State& state, const std::string& cmd, const char* key, double scale,
                    bool needs_env = true) {
  if (needs_env && !g_peer_error.empty()) {
    state.SkipWithError(g_peer_error.c_str());
    return;
  }
  for (auto _ : state) {
    std::string out;
    auto j = kdx::bench::run_peer(cmd, out);
    if (!j.is_object() || !j.contains(key)) {
      state.SkipWithError(("peer failed: " + cmd + "\n" + out).c_str());
      return;
    }
    state.SetIterationTime(j[key].get<double>() * scale);
  }
}

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

// peer: python (Debian's 1.13), torch2, torch2-compile, sru-package.
void BM_TrainPeer(benchmark::State& state, std::string arch, std::string peer) {
  std::string py = peer == "python" ? std::string("/usr/bin/python3 ") : python_of("torch2_python");
  std::string cmd = py + KDX_SOURCE_DIR "/tools/bench/students.py --arch " + arch +
                    " --steps 8 --threads " + std::to_string(threads());
  if (peer == "torch2-compile") cmd += " --compile";
  if (peer == "sru-package") cmd += " --impl sru";
  // Debian's torch needs no peer environment.
  run_timed_peer(state, cmd, "seconds_per_step", 1.0, peer != "python");
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

// Inference peers, each timing itself for a second per process: python (Debian's 1.13),
// torch2, sru-package (students.py --infer), ort-scan / ort-unrolled (tools/bench/ort.py).
void BM_LatencyPeer(benchmark::State& state, std::string arch, int size, int batch,
                    std::string peer) {
  std::string cmd;
  if (peer.rfind("ort", 0) == 0) {
    if (!g_peer_error.empty()) {
      state.SkipWithError(g_peer_error.c_str());
      return;
    }
    cmd = python_of("onnx_python") + KDX_SOURCE_DIR "/tools/bench/ort.py " +
          export_dir(arch, size) + " --batch " + std::to_string(batch) + " --len " +
          std::to_string(kLen) + " --threads " + std::to_string(threads()) + " --sru " +
          (peer == "ort-unrolled" ? "unrolled" : "scan");
  } else {
    std::string py =
        peer == "python" ? std::string("/usr/bin/python3 ") : python_of("torch2_python");
    cmd = py + KDX_SOURCE_DIR "/tools/bench/students.py --infer --arch " + arch + " --batch " +
          std::to_string(batch) + " --len " + std::to_string(kLen) + " --emb " +
          std::to_string(kSizes[size].emb) + " --hidden " + std::to_string(kSizes[size].hidden) +
          " --vocab " + std::to_string(kVocab) + " --columns " + std::to_string(kColumns) +
          " --threads " + std::to_string(threads());
    if (peer == "sru-package") cmd += " --impl sru";
  }
  run_timed_peer(state, cmd, "ms_per_call", 1e-3, peer != "python");
}

// kdx's infer() at batch x 128.
void BM_Batched(benchmark::State& state, std::string arch, int size) {
  torch::set_num_threads(threads());
  auto m = student(arch, kSizes[size]);
  m->eval();
  auto ids = torch::randint(5, kVocab, {kBatch, kLen}, torch::kInt64);
  auto mask = torch::ones({kBatch, kLen}, torch::kInt64);
  m->infer(ids, mask);
  for (auto _ : state) benchmark::DoNotOptimize(m->infer(ids, mask).data_ptr());
}

// The roofline's inputs, measured in this run: the GEMM peak (a 1024^3 product) and the read
// bandwidth of a buffer that stays in L2 (1 MiB) and of one that does not (4 MiB, the large
// LSTM's recurrent matrix of one direction).
struct Machine {
  double flops = 0, bw_l2 = 0, bw_far = 0;
};
Machine g_machine;

void BM_Machine(benchmark::State& state) {
  torch::set_num_threads(threads());
  auto a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  auto timed = [](auto&& f, int reps) {
    f();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  for (auto _ : state) {
    double t = timed([&] { benchmark::DoNotOptimize(torch::mm(a, b).data_ptr()); }, 10);
    g_machine.flops = 2.0 * 1024 * 1024 * 1024 / t;
    auto l2 = torch::randn({256 * 1024}), far = torch::randn({1024 * 1024});
    // The faster of two readers (torch's sum, the kernels' own loads): the roofline takes the
    // best read this machine showed. Measured here: torch's sum faster from L2, the kernels'
    // loads faster beyond it.
    auto read_s = [&](const torch::Tensor& t, int reps) {
      double s = timed([&] { benchmark::DoNotOptimize(t.sum().item<float>()); }, reps);
      if (kdx::models::kernels::available())
        s = std::min(s, timed(
                            [&] {
                              benchmark::DoNotOptimize(
                                  kdx::models::kernels::stream_sum(t.data_ptr<float>(), t.numel()));
                            },
                            reps));
      return s;
    };
    g_machine.bw_l2 = 1024.0 * 1024 / read_s(l2, 2000);
    g_machine.bw_far = 4.0 * 1024 * 1024 / read_s(far, 200);
  }
  state.counters["GFLOP/s"] = g_machine.flops / 1e9;
  state.counters["L2_GB/s"] = g_machine.bw_l2 / 1e9;
  state.counters["4MiB_GB/s"] = g_machine.bw_far / 1e9;
}

// The least time the model's work can take here at batch x 128: every matrix product at the
// GEMM peak, and the LSTM's recurrent product (a matrix-vector product per step at batch 1,
// which must read W_hh each step) no faster than reading W_hh from where it fits.
double roofline_ms(const std::string& arch, const Size& s, int batch) {
  const double T = kLen, E = s.emb, H = s.hidden, out = kColumns * 3, B = batch;
  double gemm = B * T * 2 * H * out * 2, recurrent_flops = 0, recurrent_bytes = 0;
  if (arch == "lstm") {
    gemm += 2 * B * T * 4 * H * E * 2;
    recurrent_flops = 2 * B * T * 4 * H * H * 2;
    recurrent_bytes = 2 * T * 4 * H * H * 4;  // once per step, whatever the batch
  } else {
    double K = E == 2 * H ? 3 : 4;
    if (arch == "srupp")
      gemm += B * T * (E * H + 2 * H * H + 2 * T * H + H * 2 * H * K) * 2;
    else
      gemm += B * T * E * 2 * H * K * 2;
  }
  double bw = 4 * H * H * 4 <= 1.5 * 1024 * 1024 ? g_machine.bw_l2 : g_machine.bw_far;
  return 1e3 * ((gemm + recurrent_flops) / g_machine.flops +
                std::max(0.0, recurrent_bytes / bw - recurrent_flops / g_machine.flops));
}

}  // namespace

int main(int argc, char** argv) {
  {
    std::string out;
    g_peers = kdx::bench::run_peer(KDX_SOURCE_DIR "/tools/bench/peers-env", out);
    if (!g_peers.is_object()) g_peer_error = "tools/bench/peers-env failed: " + out;
    g_export_root = (std::filesystem::temp_directory_path() /
                     ("kdx-bench-students-" + std::to_string(::getpid())))
                        .string();
  }
  const std::vector<std::string> train_peers = {"python", "torch2", "torch2-compile",
                                                "sru-package"};
  for (auto arch : kArchs) {
    benchmark::RegisterBenchmark(("Train/cpp/" + std::string(arch)).c_str(), BM_TrainCpp, arch)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
    for (auto& peer : train_peers) {
      if (peer == "sru-package" && std::string(arch) == "lstm") continue;
      if (peer == "torch2-compile" && std::string(arch) != "lstm") continue;  // see README
      benchmark::RegisterBenchmark(("Train/" + peer + "/" + arch).c_str(), BM_TrainPeer,
                                   std::string(arch), peer)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime()
          ->Iterations(1);
    }
  }
  benchmark::RegisterBenchmark("Machine", BM_Machine)->Unit(benchmark::kMillisecond)->Iterations(1);
  benchmark::RegisterBenchmark("Latency/bert-base", BM_Latency, "bert-base", 0)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(3.0);
  // kdx and its peers alternate per model (A B C ... over the table), so drift hits all.
  const std::vector<std::string> infer_peers = {"ort-scan", "ort-unrolled", "torch2", "sru-package",
                                                "python"};
  auto peers_of = [&](const std::string& arch, int batch) {
    std::vector<std::string> out;
    for (auto& p : infer_peers) {
      if (arch == "lstm" && (p == "ort-unrolled" || p == "sru-package")) continue;
      if (batch > 1 && p != "ort-scan" && p != "ort-unrolled" && p != "torch2") continue;
      out.push_back(p);
    }
    return out;
  };
  for (int s = 0; s < kNumSizes; ++s)
    for (auto arch : kArchs) {
      std::string key = std::string(arch) + "/" + kSizes[s].name;
      benchmark::RegisterBenchmark(("Latency/" + key).c_str(), BM_Latency, arch, s)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
      for (auto& peer : peers_of(arch, 1))
        benchmark::RegisterBenchmark(("LatencyPeer/" + peer + "/" + key).c_str(), BM_LatencyPeer,
                                     arch, s, 1, peer)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(1);
    }
  for (int s = 0; s < kNumSizes; ++s)
    for (auto arch : kArchs) {
      std::string key = std::string(arch) + "/" + kSizes[s].name;
      benchmark::RegisterBenchmark(("Batched/" + key).c_str(), BM_Batched, arch, s)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
      for (auto& peer : peers_of(arch, kBatch))
        benchmark::RegisterBenchmark(("BatchedPeer/" + peer + "/" + key).c_str(), BM_LatencyPeer,
                                     arch, s, kBatch, peer)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(1);
    }

  // A reporter that keeps each run's real time for the ratio table.
  struct Keep : benchmark::ConsoleReporter {
    void ReportRuns(const std::vector<Run>& runs) override {
      ConsoleReporter::ReportRuns(runs);
      for (auto& r : runs)
        if (!r.error_occurred) times[r.benchmark_name()] = r.GetAdjustedRealTime();
    }
    std::map<std::string, double> times;
  } reporter;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::filesystem::remove_all(g_export_root);

  auto t = [&](const std::string& name) {
    for (auto& [k, v] : reporter.times)
      if (k.rfind(name + "/", 0) == 0 || k == name) return v;
    return 0.0;
  };
  auto cell = [](double ms) {
    char b[32];
    if (ms > 0)
      std::snprintf(b, sizeof b, "%.2f", ms);
    else
      std::snprintf(b, sizeof b, "-");
    return std::string(b);
  };
  auto ratio = [](double peer, double ours) {
    char b[32];
    if (peer > 0 && ours > 0)
      std::snprintf(b, sizeof b, "%.2fx", peer / ours);
    else
      std::snprintf(b, sizeof b, "-");
    return std::string(b);
  };
  std::printf("\nthreads: %d; kernels: %s\n", threads(),
              *kdx::models::kernels::isa() ? kdx::models::kernels::isa() : "none (ATen paths)");
  std::printf(
      "\ntraining, batch %d x %d (tokens/s; ratio = kdx / peer)\n| student | kdx | PyTorch 1.13 | "
      "kdx / 1.13 | PyTorch 2.x | kdx / 2.x | 2.x compile | kdx / compile | sru package | kdx / "
      "sru |\n|---|---|---|---|---|---|---|---|---|---|\n",
      kBatch, kLen);
  auto tps = [](double ms) {
    char b[32];
    if (ms > 0)
      std::snprintf(b, sizeof b, "%.0f", kBatch * kLen / (ms / 1e3));
    else
      std::snprintf(b, sizeof b, "-");
    return std::string(b);
  };
  for (auto arch : kArchs) {
    std::string a = arch;
    double cpp = t("Train/cpp/" + a), py = t("Train/python/" + a), t2 = t("Train/torch2/" + a),
           tc = t("Train/torch2-compile/" + a), sp = t("Train/sru-package/" + a);
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", arch, tps(cpp).c_str(),
                tps(py).c_str(), ratio(py, cpp).c_str(), tps(t2).c_str(), ratio(t2, cpp).c_str(),
                tps(tc).c_str(), ratio(tc, cpp).c_str(), tps(sp).c_str(), ratio(sp, cpp).c_str());
  }
  std::printf("\nmachine: GEMM %.1f GFLOP/s, read %.1f GB/s (1 MiB, L2), %.1f GB/s (4 MiB)\n",
              g_machine.flops / 1e9, g_machine.bw_l2 / 1e9, g_machine.bw_far / 1e9);
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
  for (int batch : {1, kBatch}) {
    std::string kdx_prefix = batch == 1 ? "Latency/" : "Batched/";
    std::string peer_prefix = batch == 1 ? "LatencyPeer/" : "BatchedPeer/";
    std::printf(
        "\ninference, batch %d x %d (ms per call; ratio = peer / kdx, above 1: kdx faster)\n"
        "| student (emb, hidden) | kdx infer() | roofline | kdx / roofline | ONNX Runtime "
        "(best) | ORT form | vs ORT | PyTorch 2.x | vs 2.x | sru package | vs sru | PyTorch "
        "1.13 | vs 1.13 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        batch, kLen);
    for (int s = 0; s < kNumSizes; ++s)
      for (auto arch : kArchs) {
        std::string key = std::string(arch) + "/" + kSizes[s].name;
        double ms = t(kdx_prefix + key), roof = roofline_ms(arch, kSizes[s], batch);
        double scan = t(peer_prefix + "ort-scan/" + key),
               unrolled = t(peer_prefix + "ort-unrolled/" + key);
        double ort = scan;
        std::string form = std::string(arch) == "lstm" ? "LSTM op" : "Scan";
        if (unrolled > 0 && (ort <= 0 || unrolled < ort)) {
          ort = unrolled;
          form = "unrolled";
        }
        double t2 = t(peer_prefix + "torch2/" + key), sp = t(peer_prefix + "sru-package/" + key),
               py = t(peer_prefix + "python/" + key);
        std::printf("| %s (%d, %d) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    arch, kSizes[s].emb, kSizes[s].hidden, cell(ms).c_str(), cell(roof).c_str(),
                    ratio(ms, roof).c_str(), cell(ort).c_str(), ort > 0 ? form.c_str() : "-",
                    ratio(ort, ms).c_str(), cell(t2).c_str(), ratio(t2, ms).c_str(),
                    cell(sp).c_str(), ratio(sp, ms).c_str(), cell(py).c_str(),
                    ratio(py, ms).c_str());
      }
  }
  return 0;
}
