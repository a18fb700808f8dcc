#include "workers/worker_cli.h"

#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/log.h"
#include "workers/distributed/launcher.h"
#include "workers/distributed/process_group.h"
#include "workers/runtime/execution.h"
#include "workers/training/export.h"
#include "workers/training/run_spec.h"
#include "workers/training/stages.h"
#include "workers/training/trainer.h"

namespace kdx {
namespace {

// Inside a training loop: a flag the loop checks after each step (checkpoint, then exit).
// Anywhere else (preparing data, a stage without a loop, the final evaluation) nothing would be
// saved, and the run's files are written atomically: exit now, as the loop's stop would.
void on_signal(int sig) {
  if (!training::g_in_training_loop.load()) ::_exit(128 + sig);
  training::g_stop_signal.store(sig);
}

// Which BLAS this process really runs: the library mapped into it, not what the build hoped for.
std::string blas_in_use() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto p = line.find('/');
    if (p == std::string::npos) continue;
    std::string lib = line.substr(p);
    if (lib.find("openblas") != std::string::npos || lib.find("libblas") != std::string::npos ||
        lib.find("mkl") != std::string::npos)
      return lib;
  }
  return "none found";
}

int threads_from(int option, int cpus) {
  if (option > 0) return option;
  if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && std::atoi(omp) > 0)
    return std::atoi(omp);
  if (cpus > 1) return cpus;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

const char* const kInferenceEnvironmentHelp =
    "Environment (CPU inference of students: latency, evaluation, kdx-tag):\n"
    "  KDX_LSTM_KERNEL=auto|fused|loop|aten  the LSTM's inference kernel (default auto: the "
    "fused kernel where it runs, else the faster of loop and aten, measured)\n"
    "  KDX_KERNEL_ISA=avx512|avx2|none  pin the fused kernels to a set, or turn them off "
    "(default: "
    "the widest this CPU has, AVX-512 or AVX2)";

int worker_main(int argc, char** argv) {
  CLI::App app{
      "kdx-worker: trains one kdx run from its run.json: a pretrain (masked LM), teacher, "
      "logits (the teacher-logits cache), student, or one phase of two-phase distillation "
      "(student_kd: from the teacher alone on the transfer corpus; student_finetune: that "
      "student on the gold tags)"};
  app.footer(
      std::string("Signals (SIGTERM, SIGUSR1, SIGINT): during training, checkpoint after "
                  "the step and exit 128 + the signal, so a rerun resumes; anywhere "
                  "else, exit at once with that code (no result.json, no new checkpoint). "
                  "A rerun removes the temporary files an interrupted write left in the run "
                  "directory.\n\n"
                  "Environment (training):\n"
                  "  KDX_LSTM_TRAIN=kdx|aten  the LSTM's training recurrence on CPUs (default "
                  "kdx: one autograd function, its cell update vectorized; aten: ATen's LSTM; "
                  "GPUs always run ATen's, i.e. cuDNN)\n\n") +
      kInferenceEnvironmentHelp);
  std::string spec_path;
  int threads = 0, nproc = 1, latency_runs = 20;
  bool quiet = false, no_latency = false;
  app.add_option("--spec", spec_path, "the run's run.json (written by kdx)");
  app.add_option("--threads", threads,
                 "intra-op threads per rank (default: $OMP_NUM_THREADS, else all cores)");
  app.add_option("--nproc", nproc,
                 "start N data-parallel ranks on this machine (Gloo), like torchrun")
      ->check(CLI::PositiveNumber);
  app.add_option("--latency-runs", latency_runs, "timed calls per CPU latency measurement")
      ->capture_default_str();
  app.add_flag("--no-latency", no_latency, "skip the CPU latency measurement");
  app.add_flag("--quiet", quiet, "no progress output");
  std::string log_level;
  app.add_option(
      "--log-level", log_level,
      "trace | debug | info | warning | error | off (default: $KDX_LOG_LEVEL, else info)");
  auto* exp = app.add_subcommand(
      "export", "Write a finished student (or teacher) as a self-contained model directory");
  std::string run_dir, out_dir;
  exp->add_option("--run", run_dir, "the finished run's directory")->required();
  exp->add_option("--out", out_dir, "where to write it (default: RUN/export)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    log::init("kdx-worker", log_level);
    if (*exp) {
      std::string out = out_dir.empty() ? run_dir + "/export" : out_dir;
      training::export_model(run_dir, out);
      std::cout << "exported " << run_dir << " to " << out << "\n";
      return 0;
    }
    if (spec_path.empty()) throw Error("--spec run.json is required (or the export subcommand)");
    auto spec = training::read_run_spec(spec_path);
    if (nproc > 1) return distributed::launch_local_ranks(argc, argv, nproc);

    std::signal(SIGTERM, on_signal);
    std::signal(SIGUSR1, on_signal);
    std::signal(SIGINT, on_signal);
    // Device and precision once, from run.json and this rank's local index; the device is
    // made current before the process group (NCCL binds to it).
    auto exec = runtime::resolve_execution(spec.params.value("device", std::string("auto")),
                                           spec.params.value("amp", std::string("auto")),
                                           distributed::rank_info_from_env().local_rank,
                                           spec.path + ": params");
    runtime::activate(exec);
    auto reducer = distributed::make_reducer_from_env(exec.device);
    log::set_rank(reducer->rank, reducer->world);
    int n = threads_from(threads, spec.cpus);
    torch::set_num_threads(n);
    if (!quiet)
      spdlog::info("run {} stage {}, rank {}/{} ({}), device {}, amp {}, {} threads, BLAS {}",
                   spec.id, spec.stage, reducer->rank, reducer->world, reducer->backend,
                   exec.describe(), runtime::amp_name(exec.amp), n, blas_in_use());
    spdlog::debug("run.json {}, run directory {}", spec_path, spec.run_dir);
    if (reducer->rank == 0)  // the run directory's one writer
      for (auto& f : remove_stale_temporaries(spec.run_dir))
        spdlog::info("removed {}, left by an interrupted write", f);
    training::StageOptions so;
    so.latency_runs = latency_runs;
    so.measure_latency = !no_latency;
    so.quiet = quiet;
    so.exec = exec;
    training::run_stage(spec, *reducer, so);
    return 0;
  } catch (const training::StopRequested& e) {
    spdlog::warn("{}; checkpoint written, exiting so the run can resume", e.what());
    return 128 + e.signal;
  } catch (const Error& e) {
    std::fprintf(stderr, "kdx-worker: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    bool oom =
        what.find("alloc") != std::string::npos || what.find("out of memory") != std::string::npos;
    std::fprintf(stderr, "kdx-worker: error: %s%s\n",
                 oom ? "out of memory: " : "LibTorch: ", what.c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(
        stderr,
        "kdx-worker: error: out of memory (lower batch_size or window, or ask for more mem)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kdx-worker: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace kdx
