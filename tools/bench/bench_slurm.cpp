// kdx on a Slurm cluster at scale: plan + render + submit a 10,000-run grid to the private
// local cluster (jobs held, then cancelled), counting sbatch calls; then one status poll of
// those 10,000 runs, split into time inside kdx and time waiting for squeue/sacct.
// Targets: <= 12 sbatch calls; < 0.5 s of kdx's own time per poll.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "orchestrator/planner.h"
#include "orchestrator/registry.h"
#include "orchestrator/slurm_executor.h"
#include "orchestrator/submit.h"

namespace {

std::string g_dir, g_cluster_env;
kdx::Spec g_spec;

std::string grid_yaml() {
  std::string hidden, seed;
  for (int i = 0; i < 50; ++i) hidden += (i ? ", " : "") + std::to_string(16 + i);
  for (int i = 0; i < 100; ++i) seed += (i ? ", " : "") + std::to_string(i);
  return "experiment: bench\n"
         "datasets: [{name: d, format: runne, train: t, test: t}]\n"
         "teacher: {}\n"
         "students:\n  grid:\n    hidden: [" +
         hidden + "]\n    seed: [" + seed +
         "]\n    loss: [{kd_weight: 0}, {kd_weight: 1}]\n"
         "worker: {command: ['/bin/true']}\n";
}

void BM_SubmitHeld10k(benchmark::State& state) {
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto plan = kdx::make_plan(g_spec, g_dir + "/results");
    kdx::Registry reg(g_dir + "/results/registry.sqlite");
    kdx::register_plan(reg, plan, g_spec, "", "slurm");
    kdx::SlurmOptions o;
    o.hold = true;
    auto rep = kdx::submit_slurm(reg, "bench", o);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    state.counters["runs"] = rep.runs_submitted;
    state.counters["sbatch_calls"] = rep.sbatch_calls;
    std::printf("submitted %d runs in %d sbatch calls, %.2f s\n", rep.runs_submitted,
                rep.sbatch_calls, s);
  }
}
BENCHMARK(BM_SubmitHeld10k)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);

void BM_Poll10k(benchmark::State& state) {
  kdx::Registry reg(g_dir + "/results/registry.sqlite");
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto rep = kdx::reconcile_slurm(reg);
    double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(total);
    state.counters["kdx_s"] = total - rep.slurm_seconds;
    state.counters["slurm_s"] = rep.slurm_seconds;
    std::printf("poll: %.3f s in kdx, %.3f s in squeue+sacct (%d + %d calls)\n",
                total - rep.slurm_seconds, rep.slurm_seconds, rep.squeue_calls, rep.sacct_calls);
  }
}
BENCHMARK(BM_Poll10k)->UseManualTime()->Iterations(3)->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  char tmpl[] = "/tmp/kdx-bench-slurm-XXXXXX";
  g_dir = ::mkdtemp(tmpl);
  std::string cluster = std::string(KDX_SOURCE_DIR) + "/slurm/cluster";
  g_cluster_env = "SLURM_LOCAL_DIR=" + g_dir + "/cluster PORT_BASE=18817 ";
  if (std::system((g_cluster_env + cluster + " up").c_str()) != 0) return 1;
  ::setenv("SLURM_CONF", (g_dir + "/cluster/etc/slurm.conf").c_str(), 1);
  kdx::SpecOptions so;
  so.check_data_files = false;
  g_spec = kdx::parse_spec_text(grid_yaml(), "bench.yaml", so);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  std::system((g_cluster_env + cluster + " down").c_str());
  std::system(("rm -rf " + g_dir).c_str());
  return 0;
}
