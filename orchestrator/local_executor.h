// The embedded executor: runs a plan's runs as local processes, honouring the stage DAG,
// at most `jobs` at a time and within a CPU and a GPU budget. All state lives in the registry and
// the run directories, so a later kdx (status, another scheduler) picks up where a killed one
// stopped.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "orchestrator/registry.h"

namespace kdx {

struct Progress {
  int total = 0, pending = 0, running = 0, completed = 0, failed = 0;
  double elapsed_s = 0;
  double eta_s = -1;  // -1 = unknown
};
std::string format_progress(const Progress& p);
// Counts one run of the given state into p (total and its bucket).
void tally(Progress& p, const std::string& run_state);

struct LocalOptions {
  std::string experiment;  // empty = every experiment with local runs
  int jobs = 1;
  // Cores the running runs may hold together (each holds its resources.cpus; its OpenMP and
  // LibTorch threads are set to that). 0 = no limit. A run asking for more than the budget
  // runs alone. Oversubscribed OpenMP threads spin at barriers: two 2-thread teachers on 2
  // cores ran 6x slower together than one after the other.
  int cpus = 0;
  // GPUs the running runs may hold together, as CUDA_VISIBLE_DEVICES entries ("0", "1", ...;
  // see local_gpu_ids()). A run holds resources.gpus_per_node of them while it runs, sees
  // exactly those (CUDA_VISIBLE_DEVICES=the held entries, comma-separated), and runs one rank
  // per GPU when params.ranks is 1. A run without GPUs gets CUDA_VISIBLE_DEVICES="" when this
  // list is not empty (a CPU run must not take GPU 0) and kdx's own environment when it is.
  // A run asking for more GPUs than the list holds fails at once (NOT_ENOUGH_GPUS), naming
  // both numbers; one asking for no more waits until its GPUs are free.
  std::vector<std::string> gpus;
  double poll_interval_s = 0.2;
  double kill_grace_s = 10;  // SIGTERM -> SIGKILL at a time limit or cancel
  std::function<void(const Progress&)> on_progress;
};

// Schedules until no PENDING or RUNNING local run of `options.experiment` is left, launching
// the pending runs of every experiment of the registry meanwhile. When another scheduler holds
// the registry's lock, it watches, and takes over when that one ends. Returns the number of
// runs of the experiment that did not complete.
int run_local(Registry& reg, const LocalOptions& options);

// The GPUs this machine offers: the number of entries of $CUDA_VISIBLE_DEVICES when it is
// set (an empty value: 0), else the number of /dev/nvidia<N> device files, else 0.
int detect_local_gpus();
// The budget's device list for `--gpus n`: the first n entries of $CUDA_VISIBLE_DEVICES when
// it is set (asking for more than it names is an error), else "0" ... "n-1".
std::vector<std::string> local_gpu_ids(int n);

// Whether some process is scheduling this registry's local runs now.
bool local_scheduler_running(const std::string& registry_path);

// Ingests finished attempts, marks lost ones, enforces time limits. Safe to call from any
// kdx process at any time: each attempt is ingested once.
void reconcile_local(Registry& reg, double kill_grace_s = 10);

// SIGTERM to the worker's process group; the run becomes CANCELLED.
void cancel_local(Registry& reg, const RunRecord& run);

// Log and exit-status files of an attempt, inside the run directory.
std::string attempt_log(const std::string& run_dir, int number, const std::string& ext);

// The default worker command: kdx-worker next to this kdx binary, else from PATH.
std::vector<std::string> default_worker_command();

}  // namespace kdx
