// Detached, supervised child processes for the local executor.
//
// launch_detached() forks a supervisor in a new session; the supervisor forks the worker
// into its own process group, waits for it and writes its exit status atomically to
// `exit_path`. kdx may die at any time: the supervisor carries on, and a later kdx reads
// the exit file (or, if there is none and neither process is alive, calls the run lost).
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kdx {

struct LaunchSpec {
  std::vector<std::string> argv;
  std::string cwd;
  std::string stdout_path;
  std::string stderr_path;
  std::string exit_path;  // JSON {"exit_code": N} or {"signal": N}, written when the worker ends
  std::map<std::string, std::string> env;  // added to the inherited environment
};

struct Launched {
  pid_t supervisor = 0;
  pid_t worker = 0;  // also its process group id
  long long worker_start = 0;
};

// Throws kdx::Error when the program cannot be started (exec failure is reported, not hidden).
Launched launch_detached(const LaunchSpec& spec);

struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> signal;
  double end_time = 0;
};
std::optional<ExitStatus> read_exit_status(const std::string& exit_path);

// Start time (clock ticks since boot) from /proc/<pid>/stat; 0 when there is no such process.
long long process_start_ticks(pid_t pid);
// Alive = exists, is not a zombie, and (when start_ticks != 0) is the same process we started.
bool process_alive(pid_t pid, long long start_ticks = 0);
// Reaps any of our finished children without blocking (supervisors started by this process).
void reap_children();

}  // namespace kdx
