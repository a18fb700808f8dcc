#include "orchestrator/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/log.h"
#include "common/params.h"
#include "common/strings.h"
#include "orchestrator/command.h"
#include "orchestrator/commands.h"
#include "orchestrator/local_executor.h"
#include "orchestrator/plan_view.h"
#include "orchestrator/planner.h"
#include "orchestrator/registry.h"
#include "orchestrator/run_logs.h"
#include "orchestrator/run_state.h"
#include "orchestrator/slurm_executor.h"
#include "orchestrator/spec.h"
#include "orchestrator/status_view.h"
#include "orchestrator/submit.h"

namespace kdx {
namespace {

struct Global {
  std::string registry = "results/registry.sqlite";
  std::string log_level;
};

std::string results_dir_of(const std::string& registry_path) {
  auto slash = registry_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : registry_path.substr(0, slash);
  if (!dir.empty() && dir[0] != '/') {
    char buf[4096];
    if (::getcwd(buf, sizeof buf)) dir = std::string(buf) + "/" + dir;
  }
  return dir;
}

// Progress on a terminal rewrites one line; in a log it prints a line when something changes.
std::function<void(const Progress&)> progress_printer() {
  bool tty = ::isatty(STDERR_FILENO);
  auto last = std::make_shared<std::string>();
  auto last_time = std::make_shared<double>(0);
  return [tty, last, last_time](const Progress& p) {
    std::string line = format_progress(p);
    std::string key = line.substr(0, line.find(']'));
    if (tty) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      if (p.pending == 0 && p.running == 0) std::fprintf(stderr, "\n");
    } else if (key != *last || now_seconds() - *last_time > 30) {
      std::fprintf(stderr, "%s\n", line.c_str());
      *last = key;
      *last_time = now_seconds();
    }
  };
}

int schedule(const std::string& registry, const std::string& experiment, int jobs, int cpus,
             const std::vector<std::string>& gpus, bool wait) {
  if (wait) {
    Registry reg(registry);
    LocalOptions opt;
    opt.experiment = experiment;
    opt.jobs = jobs;
    opt.cpus = cpus;
    opt.gpus = gpus;
    opt.on_progress = progress_printer();
    int failed = run_local(reg, opt);
    std::cout << render_status(status_rows(reg, reg.runs(experiment)));
    return failed == 0 ? 0 : 3;
  }
  // Without --wait a detached scheduler runs the DAG; it outlives this process and the terminal.
  // It reports through a pipe once it has opened the registry and read its runs, so that a
  // scheduler that cannot start (a corrupt registry, a full disk) fails this command, not
  // only its log.
  std::string log = results_dir_of(registry) + "/scheduler.log";
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw Error("cannot start the background scheduler: pipe");
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw Error("cannot start the background scheduler: fork failed");
  if (pid == 0) {
    ::close(ready[0]);
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the grandchild is re-parented: no zombie, no terminal
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    auto tell = [&](const std::string& msg) {
      if (ready[1] < 0) return;
      ssize_t ignored = ::write(ready[1], msg.data(), msg.size());
      (void)ignored;
      ::close(ready[1]);
      ready[1] = -1;
    };
    int rc = 0;
    try {
      Registry reg(registry);
      reg.check_integrity();
      reg.runs(experiment);
      tell("ok");
      LocalOptions opt;
      opt.experiment = experiment;
      opt.jobs = jobs;
      opt.cpus = cpus;
      opt.gpus = gpus;
      opt.poll_interval_s = 0.5;
      opt.on_progress = progress_printer();
      run_local(reg, opt);
    } catch (const std::exception& e) {
      spdlog::error("scheduler: {}", e.what());
      tell(e.what());
      rc = 1;
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  ::close(ready[1]);
  int status;
  ::waitpid(pid, &status, 0);
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(ready[0]);
  if (answer != "ok")
    throw Error(
        "the background scheduler could not start: " +
        (answer.empty() ? std::string("it exited without a word (see ") + log + ")" : answer));
  std::cout << "scheduling in the background (log: " << log << "); watch with: kdx status"
            << (experiment.empty() ? "" : " --experiment " + experiment) << "\n";
  return 0;
}

std::string pick_executor(const std::string& requested) {
  if (requested == "local") return "local";
  bool have = on_path("sbatch");
  if (requested == "slurm") {
    if (!have)
      throw Error(
          "--executor slurm: sbatch is not on PATH (load Slurm's module, or use --executor local)");
    return "slurm";
  }
  // auto: Slurm when its commands are here and a controller answers.
  if (have && run_program({"scontrol", "ping"}, 10).out.find("UP") != std::string::npos)
    return "slurm";
  return "local";
}

// Polls Slurm (one squeue + one sacct per round, backing off) until the runs are done.
int wait_slurm(const std::string& registry, const std::string& experiment) {
  Registry reg(registry);
  auto print = progress_printer();
  double started = now_seconds(), interval = 1;
  for (;;) {
    reconcile_slurm(reg);
    Progress p;
    for (auto& r : reg.runs(experiment)) tally(p, r.state);
    p.elapsed_s = now_seconds() - started;
    print(p);
    if (p.pending == 0 && p.running == 0) {
      std::cout << render_status(status_rows(reg, reg.runs(experiment)));
      return p.failed == 0 ? 0 : 3;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    interval = std::min(10.0, interval * 1.5);
  }
}

int submit_to_slurm(const std::string& registry, const std::string& experiment, bool hold,
                    bool wait) {
  SlurmSubmitReport rep;
  {
    Registry reg(registry);
    SlurmOptions so;
    so.hold = hold;
    rep = submit_slurm(reg, experiment, so);
  }
  std::cout << "submitted " << rep.runs_submitted << " runs in " << rep.sbatch_calls
            << " sbatch call" << (rep.sbatch_calls == 1 ? "" : "s")
            << (rep.job_ids.empty() ? "" : " (jobs " + join(rep.job_ids, ", ") + ")");
  if (rep.runs_blocked)
    std::cout << "; " << rep.runs_blocked << " cancelled because an upstream run failed";
  std::cout << "\n";
  std::cout.flush();
  return wait ? wait_slurm(registry, experiment) : 0;
}

// Every executor's view brought up to date; Slurm being unreachable is a warning, not an error.
// `best_effort` (commands that only look): a registry that cannot be written (read-only, a
// full disk) is shown as last recorded, with a warning, instead of failing the command.
void reconcile_all(Registry& reg, bool best_effort = false) {
  if (reg.read_only()) {
    static bool said = false;
    if (!said)
      spdlog::warn("{} is read-only: showing the states last recorded (nothing is updated)",
                   reg.path());
    said = true;
    return;
  }
  try {
    reconcile_local(reg);
  } catch (const Error& e) {
    std::string what = e.what();
    if (!best_effort || what.find("the registry is corrupt") != std::string::npos) throw;
    spdlog::warn("could not record the latest states ({}); showing the states last recorded", what);
    return;
  }
  if (reg.active_attempts("slurm").empty()) return;
  try {
    reconcile_slurm(reg);
  } catch (const std::exception& e) {
    spdlog::warn("could not poll Slurm: {}", e.what());
  }
}

// PENDING local runs with no scheduler alive to start them (the one that had them was killed
// or stopped): says so; the caller's scheduler takes them over. Returns how many.
int say_orphans(const std::string& registry, const std::string& experiment) {
  if (local_scheduler_running(registry)) return 0;
  Registry reg(registry);
  int n = 0;
  for (auto& r : reg.runs(experiment))
    n += r.state == state::kPending && (r.executor == "local" || r.executor.empty());
  if (n)
    std::cout << n << " pending run" << (n == 1 ? " was" : "s were")
              << " left without a scheduler (it was stopped or killed); scheduling "
              << (n == 1 ? "it" : "them") << " now\n";
  return n;
}

// CLI11's own range checks say "Value 0 not in range 0.000000 to 1.797693e+308" for --jobs 0.
CLI::Validator int_between(long long min, long long max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno != 0)
          return "expected a whole number, got '" + text + "'";
        if (v < min || v > max)
          return "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                 ", got " + text;
        return {};
      },
      std::to_string(min) + ".." + std::to_string(max));
}

CLI::Validator seconds_between(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !(v >= min && v <= max))
          return "must be a number of seconds between " + format_number(min) + " and " +
                 format_number(max) + ", got '" + text + "'";
        return {};
      },
      "SECONDS");
}

int default_jobs() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

std::vector<RunRecord> resolve_runs(Registry& reg, const std::vector<std::string>& ids) {
  std::vector<RunRecord> out;
  for (auto& id : ids) {
    auto found = reg.runs_by_prefix(id);
    if (found.empty()) throw Error("no run with id '" + id + "' in " + reg.path());
    if (found.size() > 1)
      throw Error("run id '" + id + "' is ambiguous (" + std::to_string(found.size()) +
                  " runs); type more characters");
    out.push_back(found[0]);
  }
  return out;
}

void require_experiment(Registry& reg, const std::string& experiment) {
  if (!experiment.empty() && !reg.has_experiment(experiment))
    throw Error("no experiment '" + experiment + "' in " + reg.path() +
                " (known: " + join(reg.experiments(), ", ") + ")");
}

}  // namespace

int kdx_main(int argc, char** argv) {
  CLI::App app{
      "kdx: knowledge-distillation experiments on Slurm clusters and single machines.\n"
      "Plan a YAML grid into runs, execute them (Slurm or local), record results in SQLite, "
      "report."};
  app.require_subcommand(1);
  app.footer(
      "Environment: KDX_DATA_DIR (data root), KDX_LOG_LEVEL, KDX_MAX_DATA_SIZE (default 4G: "
      "data sets and corpora larger than this are refused), KDX_MAX_RECORD_SIZE, "
      "KDX_MAX_SPEC_SIZE (16M each), KDX_MAX_WEIGHTS_SIZE (256G); workers inherit them.");
  // Options of kdx itself are accepted after the subcommand too (kdx status --registry r):
  // subcommands pass what they do not know up to here.
  app.fallthrough();
  Global g;
  app.add_option("--registry", g.registry, "SQLite registry file")->capture_default_str();
  app.add_option("--log-level", g.log_level,
                 "trace | debug | info | warning | error | off (default: $KDX_LOG_LEVEL, else "
                 "info); also passed to the workers kdx starts");
  app.set_version_flag("--version", "kdx 0.2.0");

  // submit
  auto* submit = app.add_subcommand("submit", "Plan an experiment grid and run it (new runs only)");
  std::string spec_path, executor = "auto", data_dir;
  bool dry_run = false, wait = false;
  int jobs = default_jobs(), cpus = default_jobs(), gpus = detect_local_gpus();
  submit->add_option("spec", spec_path, "experiment YAML file")->required();
  submit->add_flag("--dry-run", dry_run, "print the expanded plan and submit nothing");
  bool plan_json = false;
  submit->add_flag("--json", plan_json,
                   "with --dry-run: the plan as JSON, each run as the run.json its worker reads");
  submit
      ->add_option("--executor", executor,
                   "auto | local | slurm (auto: slurm when sbatch is on PATH)")
      ->check(CLI::IsMember({"auto", "local", "slurm"}))
      ->capture_default_str();
  submit->add_option("--jobs,-j", jobs, "local executor: runs at a time")
      ->check(int_between(1, 100000))
      ->capture_default_str();
  const char* cpus_help =
      "local executor: cores the running runs may hold together, each its resources.cpus per "
      "rank (a run asking for more runs alone; 0 = no limit; default: all online cores)";
  submit->add_option("--cpus", cpus, cpus_help)
      ->check(int_between(0, 1000000))
      ->capture_default_str();
  const char* gpus_help =
      "local executor: GPUs the running runs may hold together, each its "
      "resources.gpus_per_node, which it alone sees through CUDA_VISIBLE_DEVICES (one rank "
      "per GPU; a run asking for more GPUs than this fails; runs without GPUs get "
      "CUDA_VISIBLE_DEVICES=\"\" unless this is 0; default: the entries of "
      "$CUDA_VISIBLE_DEVICES, else the /dev/nvidiaN device files, else 0)";
  submit->add_option("--gpus", gpus, gpus_help)->check(int_between(0, 4096))->capture_default_str();
  submit->add_flag("--wait", wait, "stay until every run has finished, showing progress");
  bool hold = false;
  submit->add_flag("--hold", hold,
                   "slurm: submit the jobs held (release them with scontrol release)");
  std::vector<std::string> only_datasets;
  submit
      ->add_option("--dataset", only_datasets,
                   "plan only this dataset's runs (repeatable; their ids are those of the whole "
                   "file, so a later submit without it skips them)")
      ->allow_extra_args(false);
  submit->add_option("--data-dir", data_dir,
                     "data root (default: $KDX_DATA_DIR, ../shared/data, data/)");

  // status
  auto* status =
      app.add_subcommand("status", "One row per run: stage, config, state, attempt, elapsed, F1");
  std::string experiment;
  bool json = false;
  status->add_option("--experiment,-e", experiment, "only this experiment");
  status->add_flag("--json", json, "machine-readable output");
  bool watch = false;
  double interval = 5;
  status->add_flag("--watch", watch, "refresh in place until every run has finished");
  status->add_option("--interval", interval, "seconds between refreshes with --watch")
      ->check(seconds_between(0.1, 86400))
      ->capture_default_str();

  auto* show =
      app.add_subcommand("show", "One run in full: resolved config, attempts, log paths, metrics");
  std::string run_id;
  show->add_option("run", run_id, "run id (or a unique prefix)")->required();
  show->add_flag("--json", json, "machine-readable output");

  auto* cancel = app.add_subcommand("cancel", "Cancel pending and running runs");
  std::vector<std::string> cancel_ids;
  cancel->add_option("runs", cancel_ids, "run ids (or unique prefixes)");
  cancel->add_option("--experiment,-e", experiment, "every active run of this experiment");

  auto* resubmit = app.add_subcommand(
      "resubmit", "New attempts for FAILED/TIMEOUT/CANCELLED/OUT_OF_MEMORY/PREEMPTED runs");
  bool failed_only = false;
  resubmit->add_flag("--failed", failed_only, "required: resubmit the runs that did not complete")
      ->required();
  resubmit->add_option("--experiment,-e", experiment, "only this experiment");
  resubmit->add_option("--jobs,-j", jobs, "local executor: runs at a time")
      ->check(int_between(1, 100000));
  resubmit->add_option("--cpus", cpus, cpus_help)->check(int_between(0, 1000000));
  resubmit->add_option("--gpus", gpus, gpus_help)->check(int_between(0, 4096));
  resubmit->add_flag("--wait", wait, "stay until every run has finished");

  auto* logs = app.add_subcommand("logs", "Print (or follow) a run's log, local or on Slurm");
  std::string logs_run;
  int logs_attempt = 0, logs_rank = -1;
  bool logs_follow = false;
  logs->add_option("run", logs_run, "run id (or a unique prefix)")->required();
  logs->add_flag("-f,--follow", logs_follow, "keep printing new lines until the attempt ends");
  logs->add_option("--attempt", logs_attempt, "attempt number (default: the last)")
      ->check(int_between(1, 1000000));
  logs->add_option("--rank", logs_rank, "only this rank's lines (data-parallel runs)")
      ->check(int_between(0, 1000000));

  add_worker_side_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    log::init("kdx", g.log_level);
    // Workers inherit the level through the environment, locally and in Slurm jobs.
    if (!g.log_level.empty()) ::setenv("KDX_LOG_LEVEL", g.log_level.c_str(), 1);
    if (*logs) {
      Registry reg(g.registry, Registry::Access::ReadOrReadOnly);
      reconcile_all(reg, true);
      auto run = resolve_runs(reg, {logs_run})[0];
      auto attempts = reg.attempts(run.id);
      if (attempts.empty())
        throw Error("run " + run.id + " has no attempt yet (state " + run.state + ")");
      if (logs_attempt > static_cast<int>(attempts.size()))
        throw Error("run " + run.id + " has " + std::to_string(attempts.size()) +
                    " attempt(s), not " + std::to_string(logs_attempt));
      auto a = attempts[static_cast<size_t>(logs_attempt ? logs_attempt - 1
                                                         : static_cast<int>(attempts.size()) - 1)];
      FollowOptions fo;
      fo.rank = logs_rank;
      fo.follow = logs_follow;
      fo.still_running = [&] {
        reconcile_all(reg, true);
        auto now = reg.attempts(run.id);
        for (auto& x : now)
          if (x.number == a.number) return state::is_active(x.state);
        return false;
      };
      print_log(std::cout, attempt_log_path(run, a), fo);
      return 0;
    }
    if (*submit) {
      SpecOptions so;
      so.data_dir = data_dir;
      std::string text = read_input(spec_path, InputKind::Spec);
      Spec spec = parse_spec_text(text, spec_path, so);
      Plan plan = make_plan(spec, results_dir_of(g.registry));
      keep_datasets(plan, spec, only_datasets);
      if (dry_run && plan_json) {
        nlohmann::json runs = nlohmann::json::array();
        for (auto& r : plan.runs) {
          auto j = make_run_json(r, spec);  // exactly what the worker would read
          j["deps"] = r.deps;
          runs.push_back(j);
        }
        std::cout << nlohmann::json{{"experiment", plan.experiment}, {"runs", runs}}.dump(2)
                  << "\n";
        return 0;
      }
      if (dry_run) {
        std::cout << render_plan(plan, spec.data_root);
        std::cout << plan.runs.size() << " runs planned; nothing submitted (--dry-run)\n";
        return 0;
      }
      std::string ex = dry_run ? "local" : pick_executor(executor);
      if (ex == "slurm")
        for (auto& r : plan.runs)
          check_slurm_results_dir(r.run_dir.substr(0, r.run_dir.rfind('/')));
      // Checked before anything is registered: a bad --gpus leaves no run without a scheduler.
      std::vector<std::string> gpu_ids =
          ex == "local" ? local_gpu_ids(gpus) : std::vector<std::string>{};
      SubmitSummary sum;
      {
        Registry reg(g.registry);
        reg.check_integrity();
        sum = register_plan(reg, plan, spec, text, ex);
      }
      std::cout << spec.experiment << ": " << sum.created << " new runs, " << sum.completed
                << " already completed (skipped"
                << (sum.recorded ? ", " + std::to_string(sum.recorded) +
                                       " recorded from their run directories"
                                 : std::string())
                << "), " << sum.active << " already pending/running";
      if (sum.failed)
        std::cout << ", " << sum.failed << " failed earlier (kdx resubmit --failed -e "
                  << spec.experiment << ")";
      std::cout << "\n";
      if (ex == "local" && sum.active > 0) say_orphans(g.registry, spec.experiment);
      std::cout.flush();
      if (sum.created == 0 && sum.active == 0) return 0;
      if (ex == "slurm") return submit_to_slurm(g.registry, spec.experiment, hold, wait);
      return schedule(g.registry, spec.experiment, jobs, cpus, gpu_ids, wait);
    }
    if (*status) {
      Registry reg(g.registry, Registry::Access::ReadOrReadOnly);
      reg.check_integrity();
      require_experiment(reg, experiment);
      reconcile_all(reg, true);
      while (watch && !json) {
        auto rows = status_rows(reg, reg.runs(experiment));
        std::cout << "\033[H\033[2J" << render_status(rows) << std::flush;
        bool active = false;
        for (auto& r : rows) active = active || state::is_active(r.state);
        if (!active) return 0;
        std::this_thread::sleep_for(std::chrono::duration<double>(interval));
        reconcile_all(reg, true);
      }
      auto rows = status_rows(reg, reg.runs(experiment));
      if (json) {
        std::cout << status_json(rows).dump(2) << "\n";
      } else if (rows.empty()) {
        std::cout << "no runs in " << reg.path()
                  << " (submit one with: kdx submit experiments/smoke.yaml)\n";
      } else {
        std::cout << render_status(rows);
      }
      return 0;
    }
    if (*show) {
      Registry reg(g.registry, Registry::Access::ReadOrReadOnly);
      reconcile_all(reg, true);
      auto run = resolve_runs(reg, {run_id})[0];
      if (json)
        std::cout << show_json(reg, run).dump(2) << "\n";
      else
        std::cout << render_show(reg, run);
      return 0;
    }
    if (*cancel) {
      Registry reg(g.registry);
      if (cancel_ids.empty() && experiment.empty())
        throw Error("cancel: name run ids or --experiment");
      require_experiment(reg, experiment);
      reconcile_all(reg);
      auto runs = cancel_ids.empty() ? reg.runs(experiment) : resolve_runs(reg, cancel_ids);
      int n = 0;
      std::vector<RunRecord> on_slurm;
      for (auto& r : runs) {
        if (!state::is_active(r.state)) continue;
        if (r.executor == "slurm")
          on_slurm.push_back(r);
        else
          cancel_local(reg, r);
        ++n;
      }
      cancel_slurm(reg, on_slurm);
      std::cout << "cancelled " << n << " run" << (n == 1 ? "" : "s") << "\n";
      return 0;
    }
    if (*resubmit) {
      auto gpu_ids = local_gpu_ids(gpus);
      int n = 0, on_slurm = 0;
      {
        Registry reg(g.registry);
        require_experiment(reg, experiment);
        reconcile_all(reg);
        Registry::Transaction t(reg);
        for (auto& r : reg.runs(experiment)) {
          if (!state::is_retryable(r.state)) continue;
          reg.set_run_state(r.id, state::kPending, "PENDING", "resubmitted after " + r.state);
          ++n;
          on_slurm += r.executor == "slurm";
        }
        t.commit();
      }
      std::cout << "resubmitted " << n << " run" << (n == 1 ? "" : "s") << "\n";
      int orphans = say_orphans(g.registry, experiment);
      std::cout.flush();
      if (n == 0 && orphans == 0) return 0;
      if (on_slurm) {
        int rc = submit_to_slurm(g.registry, experiment, false, wait);
        if (on_slurm == n) return rc;
      }
      return schedule(g.registry, experiment, jobs, cpus, gpu_ids, wait);
    }
    return run_worker_side_command(app, g.registry);
  } catch (const Error& e) {
    std::cerr << "kdx: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kdx: error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace kdx
