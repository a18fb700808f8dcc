// Planning and registering grids: expand + plan N runs; register 10,000 runs in a fresh
// registry. Target: 10,000 runs planned and registered in under 1 s, cost linear in N.
#include <benchmark/benchmark.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "orchestrator/planner.h"
#include "orchestrator/registry.h"
#include "orchestrator/submit.h"

namespace {

// A grid of exactly n student runs (n = 100 * 10^k): hidden x seed.
std::string grid_yaml(long n) {
  long seeds = n / 100;
  std::string hidden, seed;
  for (int i = 0; i < 50; ++i) hidden += (i ? ", " : "") + std::to_string(16 + i);
  for (long i = 0; i < seeds; ++i) seed += (i ? ", " : "") + std::to_string(i);
  return "experiment: bench\n"
         "datasets: [{name: d, format: runne, train: t, test: t}]\n"
         "teacher: {}\n"
         "students:\n"
         "  grid:\n    hidden: [" +
         hidden + "]\n    seed: [" + seed + "]\n    loss: [{kd_weight: 0}, {kd_weight: 1}]\n";
}

kdx::Spec spec_of(long n) {
  kdx::SpecOptions o;
  o.check_data_files = false;
  return kdx::parse_spec_text(grid_yaml(n), "bench.yaml", o);
}

void BM_ExpandAndPlan(benchmark::State& state) {
  auto spec = spec_of(state.range(0));
  for (auto _ : state) {
    auto plan = kdx::make_plan(spec, "/tmp/results");
    benchmark::DoNotOptimize(plan.runs.data());
  }
  state.SetComplexityN(state.range(0));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ExpandAndPlan)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oN);

void BM_PlanAndRegister(benchmark::State& state) {
  auto spec = spec_of(state.range(0));
  char tmpl[] = "/tmp/kdx-bench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string path = dir + "/r" + std::to_string(round++) + ".sqlite";
    state.ResumeTiming();
    auto plan = kdx::make_plan(spec, dir + "/results" + std::to_string(round));
    kdx::Registry reg(path);
    kdx::register_plan(reg, plan, spec, "", "local");
  }
  std::system(("rm -rf " + dir).c_str());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PlanAndRegister)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(3);

// Run directories are created at launch: kdx's cost per directory (mkdir run/ and logs/,
// run.json written atomically and fsync'ed) against a peer doing the bare minimum (two
// mkdir and one plain write) in the same run. The filesystem dominates both.
void materialize(benchmark::State& state, bool peer) {
  auto spec = spec_of(1000);
  char tmpl[] = "/tmp/kdx-bench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto plan = kdx::make_plan(spec, dir + "/r" + std::to_string(round++));
    std::vector<kdx::RunRecord> runs;
    for (auto& p : plan.runs) {
      kdx::RunRecord r;
      r.run_dir = p.run_dir;
      r.run_json = kdx::make_run_json(p, spec);
      runs.push_back(std::move(r));
    }
    ::mkdir((dir + "/r" + std::to_string(round - 1)).c_str(), 0755);
    ::mkdir((dir + "/r" + std::to_string(round - 1) + "/runs").c_str(), 0755);
    ::mkdir((dir + "/r" + std::to_string(round - 1) + "/runs/bench").c_str(), 0755);
    state.ResumeTiming();
    for (auto& r : runs) {
      if (peer) {
        ::mkdir(r.run_dir.c_str(), 0755);
        ::mkdir((r.run_dir + "/logs").c_str(), 0755);
        FILE* f = std::fopen((r.run_dir + "/run.json").c_str(), "w");
        std::string text = r.run_json.dump(2);
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
      } else {
        kdx::materialize_run(r);
      }
    }
  }
  std::system(("rm -rf " + dir).c_str());
  state.SetItemsProcessed(state.iterations() * 1003);
}
void BM_MaterializeRunDirs(benchmark::State& state) {
  materialize(state, false);
}
void BM_MaterializePeerMkdirWrite(benchmark::State& state) {
  materialize(state, true);
}
BENCHMARK(BM_MaterializeRunDirs)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_MaterializePeerMkdirWrite)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
