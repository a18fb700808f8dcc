// A small real program that speaks the worker's file protocol (run.json in, result.json
// out, atomically), for orchestrator tests that must not depend on LibTorch training.
// Behaviour is driven by the run's params so a test can predict every outcome:
//   seed == 666      -> prints an error and exits 3
//   seed == 777      -> sleeps until killed (for cancel and time-limit tests)
//   otherwise        -> sleeps KDX_TOY_SLEEP_MS (default 50) and reports f1 = hidden / (hidden +
//   100)
// Like kdx-worker, `--nproc N` starts N ranks (RANK, WORLD_SIZE, LOCAL_RANK set), and only rank
// 0 writes result.json. Every rank records the environment it was given (GPUs, ranks, threads)
// in RUN_DIR/toy-env-<rank>.json, its rank being RANK, else SLURM_PROCID, else 0.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "common/atomic_file.h"
#include "common/input_file.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

nlohmann::json env_value(const char* name) {
  const char* v = std::getenv(name);
  return v ? nlohmann::json(v) : nlohmann::json(nullptr);  // null: not set at all
}

int rank_main(const nlohmann::json& spec) {
  auto& p = spec["params"];
  long seed = p.value("seed", 0L);
  std::string run_dir = spec["run_dir"].get<std::string>();
  const char* rank_env = std::getenv("RANK") ? std::getenv("RANK") : std::getenv("SLURM_PROCID");
  int rank = rank_env ? std::atoi(rank_env) : 0;
  nlohmann::json env = {{"pid", static_cast<long>(::getpid())}, {"start", now_s()}};
  for (const char* k : {"CUDA_VISIBLE_DEVICES", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS",
                        "SLURMD_NODENAME", "SLURM_CPUS_PER_TASK", "RANK", "LOCAL_RANK",
                        "WORLD_SIZE", "OMP_NUM_THREADS", "KDX_MASTER_ADDR"})
    env[k] = env_value(k);
  kdx::write_file_atomic(run_dir + "/toy-env-" + std::to_string(rank) + ".json", env.dump(2),
                         /*durable=*/false);
  std::cout << "toy worker: run " << spec["id"].get<std::string>() << " stage "
            << spec["stage"].get<std::string>() << std::endl;
  if (seed == 666) {
    std::cerr << "toy worker: seed 666 is cursed" << std::endl;
    return 3;
  }
  if (seed == 777)
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  const char* ms = std::getenv("KDX_TOY_SLEEP_MS");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms ? std::atoi(ms) : 50));
  if (rank != 0) return 0;
  double hidden = p.value("hidden", 100.0);
  nlohmann::json result = {
      {"status", "ok"},
      {"metrics", {{"f1", hidden / (hidden + 100.0)}, {"params", hidden * 1000}}}};
  kdx::write_file_atomic(run_dir + "/result.json", result.dump(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int nproc = 1;
  if (argc == 5 && std::string(argv[3]) == "--nproc") nproc = std::atoi(argv[4]);
  if ((argc != 3 && argc != 5) || std::string(argv[1]) != "--spec" || nproc < 1) {
    std::cerr << "usage: toy_worker --spec run.json [--nproc N]\n";
    return 2;
  }
  auto spec = nlohmann::json::parse(kdx::read_input(argv[2], kdx::InputKind::Record));
  if (nproc == 1) return rank_main(spec);
  std::cout.flush();
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      int rc = rank_main(spec);
      std::cout.flush();
      ::_exit(rc);
    }
  }
  int rc = 0;
  for (int r = 0; r < nproc; ++r) {
    int status = 0;
    if (::wait(&status) > 0 && rc == 0)
      rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return rc;
}
