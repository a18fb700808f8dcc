// Data-parallel teacher training on this machine, each configuration a real kdx-worker run
// on the real RuNNE data (a BERT teacher of 4 layers x 256 hidden, 120 documents, 1 epoch):
//   1 rank x 2 threads  vs  2 ranks x 1 thread (Gloo), tokens/s;
//   all-reduce time per step with 8 MB buckets vs one all-reduce per parameter.
// The ratios in the summary are taken within this one run.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

std::string g_dir;
std::map<std::string, nlohmann::json> g_metrics;

std::string data_root() {
  const char* env = std::getenv("KDX_DATA_DIR");
  return env && *env ? env : std::string(KDX_SOURCE_DIR) + "/../shared/data";
}

std::string write_run(const std::string& name) {
  std::string d = data_root() + "/runne/";
  nlohmann::json p = {{"arch", "bert"},
                      {"layers", 4},
                      {"hidden", 256},
                      {"heads", 4},
                      {"ffn", 1024},
                      {"vocab_size", 8000},
                      {"lowercase", false},
                      {"dropout", 0.1},
                      {"seed", 1},
                      {"window", 128},
                      {"tagging", "per_type_bio"},
                      {"max_train_docs", 120},
                      {"max_test_docs", 2},
                      {"epochs", 1},
                      {"batch_size", 16},
                      {"lr", 0.0005},
                      {"weight_decay", 0.01},
                      {"warmup_steps", 10},
                      {"grad_clip", 1.0},
                      {"patience", 0},
                      {"checkpoint_every", 100000},
                      {"threads", 0},
                      {"ranks", 1}};
  std::string dir = g_dir + "/" + name;
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  nlohmann::json j = {{"kdx_run_version", 1},
                      {"id", name},
                      {"experiment", "bench"},
                      {"stage", "teacher"},
                      {"params", p},
                      {"config", nlohmann::json::object()},
                      {"dataset",
                       {{"name", "runne"},
                        {"format", "runne"},
                        {"train", {d + "train.jsonl"}},
                        {"test", {d + "test.jsonl", d + "test_with_answers.jsonl"}}}},
                      {"run_dir", dir},
                      {"teacher_dir", ""},
                      {"logits_dir", ""},
                      {"resources", {{"cpus", 2}}}};
  std::ofstream(dir + "/run.json") << j.dump(2);
  return dir;
}

void BM_Teacher(benchmark::State& state, int ranks, int threads, const char* bucket_mb) {
  std::string name = std::to_string(ranks) + "x" + std::to_string(threads) + "_b" + bucket_mb;
  for (auto _ : state) {
    std::string dir = write_run(name);
    std::string cmd = "KDX_BUCKET_MB=" + std::string(bucket_mb) +
                      " " KDX_WORKER_BIN " --quiet --no-latency --spec " + dir +
                      "/run.json --threads " + std::to_string(threads) + " --nproc " +
                      std::to_string(ranks);
    if (std::system(cmd.c_str()) != 0) {
      state.SkipWithError("kdx-worker failed");
      return;
    }
    std::ifstream in(dir + "/result.json");
    std::stringstream ss;
    ss << in.rdbuf();
    auto m = nlohmann::json::parse(ss.str())["metrics"];
    g_metrics[name] = m;
    state.SetIterationTime(m["train_seconds"].get<double>());
    state.counters["tokens/s"] = m["train_tokens_per_s"].get<double>();
    state.counters["allreduce_ms/step"] = m["allreduce_ms_per_step"].get<double>();
  }
}

}  // namespace

int main(int argc, char** argv) {
  char tmpl[] = "/tmp/kdx-bench-ddp-XXXXXX";
  g_dir = ::mkdtemp(tmpl);
  benchmark::RegisterBenchmark("Teacher/1rank_x_2threads", BM_Teacher, 1, 2, "8")
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
  benchmark::RegisterBenchmark("Teacher/2ranks_x_1thread/bucket_8MB", BM_Teacher, 2, 1, "8")
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
  benchmark::RegisterBenchmark("Teacher/2ranks_x_1thread/per_parameter", BM_Teacher, 2, 1, "0")
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  auto tps = [](const char* k) {
    return g_metrics.count(k) ? g_metrics[k]["train_tokens_per_s"].get<double>() : 0.0;
  };
  auto ar = [](const char* k) {
    return g_metrics.count(k) ? g_metrics[k]["allreduce_ms_per_step"].get<double>() : 0.0;
  };
  std::printf("\n| configuration | tokens/s | all-reduce ms/step |\n|---|---|---|\n");
  std::printf("| 1 rank x 2 threads | %.0f | - |\n", tps("1x2_b8"));
  std::printf("| 2 ranks x 1 thread, 8 MB buckets | %.0f | %.1f |\n", tps("2x1_b8"), ar("2x1_b8"));
  std::printf("| 2 ranks x 1 thread, per-parameter all-reduce | %.0f | %.1f |\n", tps("2x1_b0"),
              ar("2x1_b0"));
  if (tps("1x2_b8") > 0)
    std::printf(
        "\n2 ranks x 1 thread / 1 rank x 2 threads: %.2fx tokens/s; per-parameter / bucketed "
        "all-reduce: %.2fx time\n",
        tps("2x1_b8") / tps("1x2_b8"), ar("2x1_b8") > 0 ? ar("2x1_b0") / ar("2x1_b8") : 0.0);
  std::system(("rm -rf " + g_dir).c_str());
  return 0;
}
