#include "orchestrator/local_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/log.h"
#include "common/strings.h"
#include "orchestrator/process.h"
#include "orchestrator/resources.h"
#include "orchestrator/result_schema.h"
#include "orchestrator/run_state.h"
#include "orchestrator/submit.h"

namespace kdx {

std::string attempt_log(const std::string& run_dir, int number, const std::string& ext) {
  return run_dir + "/logs/attempt-" + std::to_string(number) + "." + ext;
}

std::vector<std::string> default_worker_command() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    std::string self(buf, static_cast<size_t>(n));
    std::string candidate = self.substr(0, self.rfind('/')) + "/kdx-worker";
    if (::access(candidate.c_str(), X_OK) == 0) return {candidate, "--spec", "{run_json}"};
  }
  return {"kdx-worker", "--spec", "{run_json}"};
}

std::string format_progress(const Progress& p) {
  std::string s = "[" + std::to_string(p.completed + p.failed) + "/" + std::to_string(p.total) +
                  " done: " + std::to_string(p.completed) + " ok, " + std::to_string(p.failed) +
                  " failed; " + std::to_string(p.running) + " running, " +
                  std::to_string(p.pending) + " pending] " + format_duration(p.elapsed_s);
  if (p.eta_s >= 0) s += ", ETA " + format_duration(p.eta_s);
  return s;
}

void tally(Progress& p, const std::string& s) {
  ++p.total;
  if (s == state::kPending)
    ++p.pending;
  else if (s == state::kRunning)
    ++p.running;
  else if (s == state::kCompleted)
    ++p.completed;
  else
    ++p.failed;
}

namespace {

std::string last_line(const std::string& path) {
  if (!is_regular_file(path)) return {};
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!trim(line).empty()) last = trim(line);
  if (last.size() > 300) last = last.substr(0, 300) + "...";
  return last;
}

std::string substitute(const std::string& s, const RunRecord& r) {
  return replace_fields(s, "{", "}", [&](const std::string& k) -> std::optional<std::string> {
    if (k == "run_json") return r.run_dir + "/run.json";
    if (k == "run_dir") return r.run_dir;
    if (k == "run_id") return r.id;
    if (k == "stage") return r.stage;
    return std::nullopt;
  });
}

// Final state of an attempt from how its process ended and what it left behind.
void judge(AttemptRecord& a, const RunRecord& run, const ExitStatus& exit, nlohmann::json& result) {
  a.end_time = exit.end_time > 0 ? exit.end_time : now_seconds();
  a.elapsed_s = a.end_time - a.start_time;
  a.exit_code = exit.exit_code;
  bool timed_out = a.raw_state == "TIMEOUT_SIGNALLED";
  std::string err_tail = last_line(attempt_log(run.run_dir, a.number, "log"));
  if (exit.exit_code && *exit.exit_code == 0) {
    std::string error;
    result = read_result(run.run_dir, run.id, error);
    a.raw_state = "exit 0";
    a.state = result.is_null() ? state::kFailed : state::kCompleted;
    if (result.is_null()) a.reason = "worker exited 0 but " + error;
    return;
  }
  if (exit.signal) {
    a.raw_state = "signal " + std::to_string(*exit.signal);
    if (timed_out) {
      a.state = state::kTimeout;
    } else if (run.state == state::kCancelled) {
      a.state = state::kCancelled;
    } else {
      a.state = state::kFailed;
      a.reason = std::string("killed by signal ") + strsignal(*exit.signal) +
                 (*exit.signal == SIGKILL ? " (out of memory?)" : "") +
                 (err_tail.empty() ? "" : "; stderr: " + err_tail);
    }
    return;
  }
  int code = exit.exit_code.value_or(-1);
  a.raw_state = "exit " + std::to_string(code);
  a.state = timed_out                        ? state::kTimeout
            : run.state == state::kCancelled ? state::kCancelled
                                             : state::kFailed;
  if (a.state == state::kFailed)
    a.reason = "exit code " + std::to_string(code) + (err_tail.empty() ? "" : ": " + err_tail);
}

}  // namespace

void reconcile_local(Registry& reg, double kill_grace_s) {
  for (auto a : reg.active_attempts("local")) {
    auto run = reg.run(a.run_id);
    if (!run) continue;
    auto exit = read_exit_status(attempt_log(run->run_dir, a.number, "exit"));
    if (exit) {
      nlohmann::json result;
      judge(a, *run, *exit, result);
      reg.finish_attempt(a, result);
      continue;
    }
    bool worker = a.pid > 0 && process_alive(static_cast<pid_t>(a.pid), a.pid_start);
    bool supervisor = a.supervisor_pid > 0 && process_alive(static_cast<pid_t>(a.supervisor_pid));
    if (!worker && !supervisor && (a.pid > 0 || now_seconds() - a.start_time > 30)) {
      // Check the exit file once more: the supervisor may have written it after our first look.
      if (read_exit_status(attempt_log(run->run_dir, a.number, "exit"))) continue;
      a.state = run->state == state::kCancelled ? state::kCancelled : state::kFailed;
      a.raw_state = "LOST";
      // Most often the disk filled up (the supervisor could not write the exit file): say so
      // when it is still full, and what the worker said last.
      std::string tail = last_line(attempt_log(run->run_dir, a.number, "log"));
      struct statvfs fs;
      bool full = ::statvfs(run->run_dir.c_str(), &fs) == 0 &&
                  static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize) < 1 << 20;
      a.reason = "worker (pid " + std::to_string(a.pid) +
                 ") and its supervisor are gone without an exit status" +
                 (full ? " (the filesystem of " + run->run_dir + " has less than 1 MiB free)"
                       : std::string()) +
                 (tail.empty() ? "" : "; last log line: " + tail);
      a.end_time = now_seconds();
      a.elapsed_s = a.end_time - a.start_time;
      reg.finish_attempt(a, nullptr);
      continue;
    }
    // Time limit, as Slurm does it: SIGTERM (the worker checkpoints), SIGKILL after a grace.
    long long limit = parse_time_limit(run->run_json["resources"].value("time", std::string("0")));
    double running_for = now_seconds() - a.start_time;
    if (worker && limit > 0 && running_for > static_cast<double>(limit)) {
      if (a.raw_state != "TIMEOUT_SIGNALLED") {
        ::kill(-static_cast<pid_t>(a.pid), SIGTERM);
        a.raw_state = "TIMEOUT_SIGNALLED";
        a.reason =
            "time limit " + run->run_json["resources"].value("time", std::string()) + " reached";
        reg.update_attempt(a);
      } else if (running_for > static_cast<double>(limit) + kill_grace_s) {
        ::kill(-static_cast<pid_t>(a.pid), SIGKILL);
      }
    }
  }
}

namespace {
// An integer of the run's run.json (`section.key`), or `fallback` when absent or not one.
int int_of(const RunRecord& run, const char* section, const char* key, int fallback) {
  auto sec = run.run_json.find(section);
  if (sec == run.run_json.end() || !sec->is_object()) return fallback;
  auto v = sec->find(key);
  return v != sec->end() && v->is_number_integer() ? v->get<int>() : fallback;
}
// The threads each rank of a run is given: its resources.cpus.
int cpus_of(const RunRecord& run) {
  return std::max(1, int_of(run, "resources", "cpus", 1));
}
// The GPUs a run holds while it runs: its resources.gpus_per_node (one machine here).
int gpus_of(const RunRecord& run) {
  return std::max(0, int_of(run, "resources", "gpus_per_node", 0));
}
// Its ranks: params.ranks, or one per GPU when that is 1 (as on Slurm: a task per GPU).
int ranks_of(const RunRecord& run) {
  int ranks = int_of(run, "params", "ranks", 1);
  return ranks > 1 ? ranks : std::max(1, gpus_of(run));
}
// The cores it holds: cpus for each of its ranks.
int cores_of(const RunRecord& run) {
  return cpus_of(run) * ranks_of(run);
}

std::string count_of(int n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// Entries of a CUDA_VISIBLE_DEVICES value, blanks dropped.
std::vector<std::string> device_entries(const std::string& value) {
  std::vector<std::string> out;
  for (auto& e : split(value, ','))
    if (!trim(e).empty()) out.push_back(trim(e));
  return out;
}
}  // namespace

int detect_local_gpus() {
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES"))
    return static_cast<int>(device_entries(v).size());
  int n = 0;
  if (DIR* dev = ::opendir("/dev")) {
    while (const dirent* e = ::readdir(dev)) {
      std::string name = e->d_name;  // nvidia0, nvidia1, ... (not nvidiactl, nvidia-uvm)
      n += name.size() > 6 && name.compare(0, 6, "nvidia") == 0 &&
           name.find_first_not_of("0123456789", 6) == std::string::npos;
    }
    ::closedir(dev);
  }
  return n;
}

std::vector<std::string> local_gpu_ids(int n) {
  std::vector<std::string> ids;
  if (n <= 0) return ids;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    ids = device_entries(v);
    if (static_cast<int>(ids.size()) < n)
      throw Error("--gpus " + std::to_string(n) + ": CUDA_VISIBLE_DEVICES='" + v + "' names only " +
                  count_of(static_cast<int>(ids.size()), "GPU"));
    ids.resize(static_cast<size_t>(n));
    return ids;
  }
  for (int i = 0; i < n; ++i) ids.push_back(std::to_string(i));
  return ids;
}

void cancel_local(Registry& reg, const RunRecord& run) {
  auto a = reg.last_attempt(run.id);
  reg.set_run_state(run.id, state::kCancelled, "CANCELLED", "cancelled by user");
  if (a && (a->state == state::kRunning) && a->pid > 0 &&
      process_alive(static_cast<pid_t>(a->pid), a->pid_start))
    ::kill(-static_cast<pid_t>(a->pid), SIGTERM);
}

namespace {

// `held`: the GPUs the run holds; `gpu_budget`: whether this machine has any to hand out.
bool launch(Registry& reg, const RunRecord& run, const std::vector<std::string>& held,
            bool gpu_budget) {
  try {
    materialize_run(run);
  } catch (const Error& e) {
    reg.set_run_state(run.id, state::kFailed, "LAUNCH_FAILED", e.what(), "local");
    return false;
  }
  ::unlink((run.run_dir + "/result.json").c_str());  // a stale one must not pass for this attempt's
  AttemptRecord a;
  a.run_id = run.id;
  a.executor = "local";
  a.state = state::kRunning;
  a.raw_state = "RUNNING";
  a.submit_time = a.start_time = now_seconds();
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  a.host = host;
  a.alloc_cpus = cores_of(run);
  a.alloc_gpus = static_cast<int>(held.size());
  {
    Registry::Transaction t(reg);
    reg.add_attempt(a);
    reg.set_run_state(run.id, state::kRunning, "RUNNING", "", "local");
    t.commit();
  }
  LaunchSpec spec;
  auto worker = run.run_json.value("worker", nlohmann::json::object());
  std::vector<std::string> cmd;
  if (worker.contains("command") && !worker["command"].empty())
    for (auto& c : worker["command"]) cmd.push_back(c.get<std::string>());
  else
    cmd = default_worker_command();
  std::vector<std::string> setup;
  if (worker.contains("setup"))
    for (auto& s : worker["setup"]) setup.push_back(s.get<std::string>());
  for (auto& c : cmd) spec.argv.push_back(substitute(c, run));
  // Several ranks: kdx-worker's own launcher starts them (RANK, WORLD_SIZE, LOCAL_RANK, ...).
  if (ranks_of(run) > 1) {
    spec.argv.push_back("--nproc");
    spec.argv.push_back(std::to_string(ranks_of(run)));
  }
  if (!setup.empty()) {
    // Setup lines (module load, source venv) need a shell; the command itself stays argv.
    std::string script = join(setup, "\n") + "\nexec \"$@\"";
    std::vector<std::string> argv = {"/bin/sh", "-c", script, "kdx-setup"};
    argv.insert(argv.end(), spec.argv.begin(), spec.argv.end());
    spec.argv = argv;
  }
  spec.cwd = run.run_dir;
  // One file per attempt, both streams (as a Slurm job's): what `kdx logs` prints.
  spec.stdout_path = spec.stderr_path = attempt_log(run.run_dir, a.number, "log");
  spec.exit_path = attempt_log(run.run_dir, a.number, "exit");
  if (worker.contains("env"))
    for (auto& [k, v] : worker["env"].items()) spec.env[k] = v.get<std::string>();
  if (!spec.env.count("OMP_NUM_THREADS"))
    spec.env["OMP_NUM_THREADS"] = std::to_string(cpus_of(run));
  // Exactly the GPUs it holds (the worker's rank r takes cuda:r of them); none for a CPU run
  // on a GPU machine, so that it does not take GPU 0 from a run that holds it.
  if (gpu_budget && !spec.env.count("CUDA_VISIBLE_DEVICES"))
    spec.env["CUDA_VISIBLE_DEVICES"] = join(held, ",");
  spec.env["KDX_RUN_ID"] = run.id;
  spec.env["KDX_RUN_DIR"] = run.run_dir;
  spec.env["KDX_ATTEMPT"] = std::to_string(a.number);
  try {
    // Which GPUs the attempt holds, for any scheduler (this one or a later one) to count.
    if (!held.empty())
      write_file_atomic(attempt_log(run.run_dir, a.number, "gpus"), join(held, ",") + "\n",
                        /*durable=*/false);
    auto l = launch_detached(spec);
    a.pid = l.worker;
    a.pid_start = l.worker_start;
    a.supervisor_pid = l.supervisor;
    reg.update_attempt(a);
    return true;
  } catch (const Error& e) {
    a.state = state::kFailed;
    a.raw_state = "LAUNCH_FAILED";
    a.reason = e.what();
    a.end_time = now_seconds();
    reg.finish_attempt(a, nullptr);
    return false;
  }
}

// An exclusive lock per registry: one scheduler launches, any others watch and take over
// when it ends (the kernel releases the lock of a killed process too).
class SchedulerLock {
 public:
  explicit SchedulerLock(const std::string& registry_path) {
    fd_ = ::open((registry_path + ".scheduler.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    try_take();
  }
  ~SchedulerLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool try_take() {
    if (!held_) held_ = fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
    return held_;
  }
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

}  // namespace

bool local_scheduler_running(const std::string& registry_path) {
  int fd = ::open((registry_path + ".scheduler.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return !free;
}

int run_local(Registry& reg, const LocalOptions& opt) {
  SchedulerLock lock(reg.path());
  double started = now_seconds();
  int initially_done = -1;
  for (;;) {
    reap_children();
    reconcile_local(reg, opt.kill_grace_s);
    auto runs = reg.runs(opt.experiment);
    std::map<std::string, std::string> state_of;
    for (auto& r : runs) state_of[r.id] = r.state;
    if (lock.try_take()) {
      // The scheduler serves every experiment of the registry under one --jobs limit: runs
      // of an experiment whose own scheduler was stopped are not left waiting.
      auto all = opt.experiment.empty() ? runs : reg.runs();
      for (auto& r : all) state_of[r.id] = r.state;
      int running = 0, cpus_used = 0;
      std::set<std::string> gpus_used;
      for (auto& r : all)
        if (r.state == state::kRunning && (r.executor == "local" || r.executor.empty())) {
          ++running;
          cpus_used += cores_of(r);
          if (gpus_of(r) == 0) continue;
          if (auto a = reg.last_attempt(r.id); a && a->executor == "local") {
            std::ifstream in(attempt_log(r.run_dir, a->number, "gpus"));
            std::string line;
            std::getline(in, line);
            for (auto& g : device_entries(line)) gpus_used.insert(g);
          }
        }
      const int gpu_budget = static_cast<int>(opt.gpus.size());
      for (auto& r : all) {
        if (r.state != state::kPending || (r.executor != "local" && !r.executor.empty())) continue;
        bool ready = true;
        std::string blocker;
        for (auto& d : r.deps) {
          auto it = state_of.find(d);
          std::string ds = "MISSING";
          if (it != state_of.end()) {
            ds = it->second;
          } else if (auto dep = reg.run(d)) {
            ds = dep->state;
          }
          if (ds == state::kCompleted) continue;
          ready = false;
          if (!state::is_active(ds)) blocker = d + " " + ds;
        }
        if (!blocker.empty()) {
          reg.set_run_state(r.id, state::kCancelled, "DEPENDENCY_NEVER_SATISFIED",
                            "upstream run " + blocker);
          state_of[r.id] = state::kCancelled;
          continue;
        }
        // GPUs are never shared: a run that can never get its GPUs fails now, not after the
        // runs it waits for (and its dependents are cancelled with it).
        const int gpus = gpus_of(r);
        if (gpus > gpu_budget) {
          std::string why = "run " + r.id + " asks for " + count_of(gpus, "GPU") +
                            " (resources.gpus_per_node) but the local executor has " +
                            std::to_string(gpu_budget) + " (--gpus " + std::to_string(gpu_budget) +
                            ")";
          spdlog::error("{}", why);
          reg.set_run_state(r.id, state::kFailed, "NOT_ENOUGH_GPUS", why, "local");
          state_of[r.id] = state::kFailed;
          continue;
        }
        std::vector<std::string> held;
        for (auto& g : opt.gpus)
          if (static_cast<int>(held.size()) < gpus && !gpus_used.count(g)) held.push_back(g);
        const int need = cores_of(r);
        const bool fits = (opt.cpus <= 0 || running == 0 || cpus_used + need <= opt.cpus) &&
                          static_cast<int>(held.size()) == gpus;
        if (ready && running < opt.jobs && fits) {
          if (launch(reg, r, held, gpu_budget > 0)) {
            ++running;
            cpus_used += need;
            gpus_used.insert(held.begin(), held.end());
          }
          state_of[r.id] = state::kRunning;
        }
      }
    }
    runs = reg.runs(opt.experiment);
    Progress p;
    for (auto& r : runs) {
      if (r.executor != "local" && !r.executor.empty() && state::is_active(r.state)) continue;
      tally(p, r.state);
    }
    int done = p.completed + p.failed;
    if (initially_done < 0) initially_done = done;
    p.elapsed_s = now_seconds() - started;
    int finished_here = done - initially_done;
    if (finished_here > 0) p.eta_s = p.elapsed_s / finished_here * (p.total - done);
    if (opt.on_progress) opt.on_progress(p);
    if (p.pending == 0 && p.running == 0) return p.failed;
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.poll_interval_s));
  }
}

}  // namespace kdx
