// Document-tagging throughput: `kdx-tag --batch` against the same work in Python PyTorch
// (tools/bench/tag.py: tokenization, windows, batched inference in inference mode, decoding
// to nested entities) and with the model in ONNX Runtime (tag.py --onnx, the graph
// tools/onnx-export builds), with the same exported model on the same documents, in one run,
// alternating A B C A B C at 1 and 2 threads. Each side times itself from reading the documents
// to the predictions written (model loading and interpreter start-up excluded) and reports
// its peak RSS.
//   build/bin/kdx-worker export --run results/runs/cpu_study/<student id> --out /tmp/model
//   KDX_BENCH_EXPORT=/tmp/model build/bin/bench_tag [DOCS.jsonl]  (default: RuNNE test)
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/bench/peer.h"

namespace {

std::string g_export, g_docs;
std::map<std::string, std::vector<nlohmann::json>> g_stats;  // "kdx/1" -> one per repetition

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string default_docs() {
  std::vector<std::string> roots;
  if (const char* d = std::getenv("KDX_DATA_DIR")) roots.push_back(d);
  roots.push_back(KDX_SOURCE_DIR "/../shared/data");
  roots.push_back(KDX_SOURCE_DIR "/data");
  for (auto& r : roots)
    if (exists(r + "/runne/test.jsonl")) return r + "/runne/test.jsonl";
  return "";
}

void BM_Tag(benchmark::State& state, std::string side, int threads) {
  const std::string out = "/tmp/kdx-bench-tag-" + side + ".jsonl";
  std::string cmd =
      side == "kdx"
          ? std::string(KDX_TAG_BIN) + " " + g_export + " --batch " + g_docs + " --out " + out +
                " --stats json --decoding greedy --threads " + std::to_string(threads) +
                " 2>&1 >/dev/null"
          : (side == "onnx" ? "$(" KDX_SOURCE_DIR "/tools/onnx-env) " : "/usr/bin/python3 ") +
                std::string(KDX_SOURCE_DIR "/tools/bench/tag.py ") + g_export + " " + g_docs +
                " --out " + out + " --decoding greedy --threads " + std::to_string(threads) +
                (side == "onnx" ? " --onnx" : "");
  for (auto _ : state) {
    std::string text;
    auto j = kdx::bench::run_peer(cmd, text);
    if (!j.is_object()) {
      state.SkipWithError((side + " failed: " + text).c_str());
      return;
    }
    state.SetIterationTime(j["seconds"].get<double>());
    g_stats[side + "/" + std::to_string(threads)].push_back(j);
    state.counters["docs/s"] = j["documents_per_s"].get<double>();
    state.counters["tokens/s"] = j["tokens_per_s"].get<double>();
    state.counters["RSS_MiB"] = j["peak_rss_mib"].get<double>();
  }
  std::remove(out.c_str());
}

double mean(const std::vector<nlohmann::json>& v, const char* key) {
  double s = 0;
  for (auto& j : v) s += j[key].get<double>();
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* e = std::getenv("KDX_BENCH_EXPORT");
  g_export = e ? e : "";
  g_docs = argc > 1 ? argv[1] : default_docs();
  if (g_export.empty() || !exists(g_export + "/model.json") || g_docs.empty()) {
    std::fprintf(stderr,
                 "bench_tag: set KDX_BENCH_EXPORT to a directory written by `kdx-worker export` "
                 "(a student) and give the documents (default: RuNNE test.jsonl under the data "
                 "root); have: export '%s', documents '%s'\n",
                 g_export.c_str(), g_docs.c_str());
    return 2;
  }
  const int kReps = 2;
  for (int threads : {1, 2})
    for (int rep = 0; rep < kReps; ++rep)
      for (const char* side : {"kdx", "python", "onnx"})
        benchmark::RegisterBenchmark(
            ("Tag/" + std::string(side) + "/threads:" + std::to_string(threads)).c_str(), BM_Tag,
            std::string(side), threads)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();

  std::printf("\nmodel: %s\ndocuments: %s\n", g_export.c_str(), g_docs.c_str());
  std::printf(
      "| threads | side | documents/s | tokens/s | peak RSS MiB | kdx / this side |\n"
      "|---|---|---|---|---|---|\n");
  for (int threads : {1, 2}) {
    auto& k = g_stats["kdx/" + std::to_string(threads)];
    if (k.empty()) continue;
    double kd = mean(k, "documents_per_s");
    std::printf("| %d | kdx-tag --batch | %.1f | %.0f | %.0f | |\n", threads, kd,
                mean(k, "tokens_per_s"), mean(k, "peak_rss_mib"));
    for (const char* side : {"python", "onnx"}) {
      auto& p = g_stats[std::string(side) + "/" + std::to_string(threads)];
      if (p.empty()) continue;
      double pd = mean(p, "documents_per_s");
      std::printf("| %d | %s | %.1f | %.0f | %.0f | %.2fx |\n", threads,
                  std::string(side) == "python" ? "Python PyTorch (tag.py)"
                                                : "ONNX Runtime (tag.py --onnx)",
                  pd, mean(p, "tokens_per_s"), mean(p, "peak_rss_mib"), kd / pd);
    }
  }
  std::printf(
      "documents: %ld, tokens: %ld (kdx), %ld (Python); entities: %ld (kdx), %ld (Python)\n",
      g_stats["kdx/1"].empty() ? 0L : g_stats["kdx/1"][0]["documents"].get<long>(),
      g_stats["kdx/1"].empty() ? 0L : g_stats["kdx/1"][0]["tokens"].get<long>(),
      g_stats["python/1"].empty() ? 0L : g_stats["python/1"][0]["tokens"].get<long>(),
      g_stats["kdx/1"].empty() ? 0L : g_stats["kdx/1"][0]["entities"].get<long>(),
      g_stats["python/1"].empty() ? 0L : g_stats["python/1"][0]["entities"].get<long>());
  return 0;
}
