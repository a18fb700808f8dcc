#include "orchestrator/slurm_executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/params.h"
#include "common/strings.h"
#include "orchestrator/command.h"
#include "orchestrator/local_executor.h"
#include "orchestrator/resources.h"
#include "orchestrator/result_schema.h"
#include "orchestrator/run_state.h"
#include "orchestrator/submit.h"

namespace kdx {
namespace {

// The shipped template, compiled in (slurm/job.sbatch), so an installed kdx needs no source tree.
const char* kDefaultTemplate =
#include "slurm_template.inc"
    ;

bool transient(const std::string& err) {
  for (auto s : {"Socket timed out", "Resource temporarily unavailable",
                 "Unable to contact slurm controller", "Zero Bytes were transmitted",
                 "Connection refused", "try again"})
    if (err.find(s) != std::string::npos) return true;
  return false;
}

// Retries what a busy or restarting controller answers; anything else is final.
CommandOutput slurm_call(const std::vector<std::string>& argv, double timeout_s, int tries = 4) {
  CommandOutput r;
  double wait = 1;
  for (int i = 0; i < tries; ++i) {
    r = run_program(argv, timeout_s);
    if (r.exit_code == 0 || r.exit_code == 127 || !(transient(r.err) || r.exit_code == 124))
      return r;
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    wait *= 2;
  }
  return r;
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  return self.substr(0, self.rfind('/'));
}

std::string worker_binary() {
  std::string candidate = self_dir() + "/kdx-worker";
  return ::access(candidate.c_str(), X_OK) == 0 ? candidate : "kdx-worker";
}

std::string array_job_of(const std::string& job_id) {
  return job_id.substr(0, job_id.find('_'));
}

std::string iso_time(double t) {
  std::time_t tt = static_cast<std::time_t>(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::localtime(&tt));
  return buf;
}

bool is_terminal_slurm(const std::string& kdx_state) {
  return !state::is_active(kdx_state);
}

std::string last_log_line(const std::string& path) {
  if (!is_regular_file(path)) return {};
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!trim(line).empty() && !starts_with(line, "kdx: job ")) last = trim(line);
  return last.size() > 300 ? last.substr(0, 300) + "..." : last;
}

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string render_template(const std::string& text,
                            const std::map<std::string, std::string>& fields,
                            const std::string& name) {
  return replace_fields(text, "{{", "}}",
                        [&](const std::string& key) -> std::optional<std::string> {
                          auto it = fields.find(key);
                          if (it == fields.end())
                            throw Error(name + ": unknown template field {{" + key + "}}");
                          return it->second;
                        });
}

std::string map_slurm_state(const std::string& raw) {
  std::string s = raw.substr(0, raw.find(' '));  // "CANCELLED by 0"
  if (s == "PENDING" || s == "CONFIGURING" || s == "REQUEUED" || s == "REQUEUE_HOLD" ||
      s == "REQUEUE_FED" || s == "RESV_DEL_HOLD" || s == "SPECIAL_EXIT")
    return state::kPending;
  if (s == "RUNNING" || s == "COMPLETING" || s == "STAGE_OUT" || s == "SIGNALING" ||
      s == "RESIZING" || s == "SUSPENDED" || s == "STOPPED")
    return state::kRunning;
  if (s == "COMPLETED") return state::kCompleted;
  if (s == "TIMEOUT" || s == "DEADLINE") return state::kTimeout;
  if (s == "CANCELLED" || s == "REVOKED") return state::kCancelled;
  if (s == "PREEMPTED") return state::kPreempted;
  if (s == "OUT_OF_MEMORY") return state::kOutOfMemory;
  return state::kFailed;  // FAILED, NODE_FAIL, BOOT_FAIL, ...
}

std::vector<std::string> expand_array_ids(const std::string& id) {
  auto open = id.find("_[");
  if (open == std::string::npos) return {id};
  std::string base = id.substr(0, open);
  std::string body = id.substr(open + 2, id.find(']') - open - 2);
  body = body.substr(0, body.find('%'));  // "1-9%2": the throttle is not an index
  std::vector<std::string> out;
  for (auto& part : split(body, ',')) {
    auto dash = part.find('-');
    long a = std::atol(part.substr(0, dash).c_str());
    long b = dash == std::string::npos ? a : std::atol(part.substr(dash + 1).c_str());
    for (long i = a; i <= b; ++i) out.push_back(base + "_" + std::to_string(i));
  }
  return out;
}

int max_array_size(double timeout_s) {
  auto r = slurm_call({"scontrol", "show", "config"}, timeout_s);
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos && trim(line.substr(0, eq)) == "MaxArraySize")
      return std::max(1, std::atoi(line.substr(eq + 1).c_str()));
  }
  return 1001;
}

bool safe_path(const std::string& p) {
  static const std::regex re("[A-Za-z0-9_./+-]+");
  return std::regex_match(p, re);
}

void check_slurm_results_dir(const std::string& dir) {
  if (!safe_path(dir))
    throw Error("results directory " + dir +
                " holds characters that are not safe in #SBATCH lines (letters, digits, "
                "'_', '.', '/', '+', '-'); use a plain path for --registry");
}

SlurmSubmitReport submit_slurm(Registry& reg, const std::string& experiment,
                               const SlurmOptions& opt) {
  SlurmSubmitReport rep;
  std::string tmpl = kDefaultTemplate, tmpl_name = "built-in slurm/job.sbatch";
  int chunk_max = -1;
  for (const std::string& stage : stage_names()) {
    // Group the stage's unsubmitted pending runs by dataset, resources and dependencies.
    std::map<std::string, std::vector<RunRecord>> groups;
    std::map<std::string, std::vector<std::string>> group_deps;
    for (auto& r0 : reg.runs(experiment)) {
      if (r0.stage != stage || r0.state != state::kPending || r0.executor != "slurm") continue;
      auto last = reg.last_attempt(r0.id);
      if (last && state::is_active(last->state)) continue;  // already in the queue
      std::set<std::string> dep_jobs;
      std::string blocker;
      for (auto& d : r0.deps) {
        auto dep = reg.run(d);
        if (!dep) {
          blocker = d + " MISSING";
          break;
        }
        if (dep->state == state::kCompleted) continue;  // no afterok on a finished job
        auto da = reg.last_attempt(d);
        if (state::is_active(dep->state) && da && state::is_active(da->state) &&
            da->executor == "slurm") {
          dep_jobs.insert(array_job_of(da->job_id));
        } else {
          blocker = d + " " + dep->state;
          break;
        }
      }
      if (!blocker.empty()) {
        reg.set_run_state(r0.id, state::kCancelled, "DEPENDENCY_NEVER_SATISFIED",
                          "upstream run " + blocker);
        ++rep.runs_blocked;
        continue;
      }
      std::string own = r0.run_json.value("worker", nlohmann::json::object())
                            .value("sbatch_template", std::string());
      if (!own.empty() && own != tmpl_name) {
        tmpl_name = own;
        tmpl = read_input(own, InputKind::Spec);
      }
      std::vector<std::string> deps(dep_jobs.begin(), dep_jobs.end());
      std::string key = r0.dataset + "|" + r0.run_json["resources"].dump() + "|" + join(deps, ":");
      groups[key].push_back(r0);
      group_deps[key] = deps;
    }
    if (groups.empty()) continue;
    if (chunk_max < 0) chunk_max = max_array_size(opt.command_timeout_s);
    for (auto& [key, members] : groups) {
      auto& res = members.front().run_json["resources"];
      auto& params = members.front().run_json["params"];
      std::string exp = members.front().experiment, dataset = members.front().dataset;
      std::string base_dir = members.front().run_dir.substr(0, members.front().run_dir.rfind('/'));
      std::string slurm_dir = base_dir + "/slurm";
      check_slurm_results_dir(base_dir);
      make_dirs(slurm_dir + "/logs");
      int nodes = res.value("nodes", 1), gpus = res.value("gpus_per_node", 0),
          ranks = params.value("ranks", 1);
      // GPUs: one task (rank) per GPU, each with its `cpus` CPUs and its own GPU. The job asks
      // `--gres=gpu:N` per node (every Slurm and select plugin knows it; the batch step of a
      // one-task job sees its GPU: CUDA_VISIBLE_DEVICES=0), and srun binds one GPU to each
      // task with `--gpus-per-task=1` (which implies --gpu-bind=per_task:1): each rank sees
      // exactly one GPU, CUDA_VISIBLE_DEVICES=<its index>, as slurm_tests checks on the test
      // cluster's GRES. The worker takes cuda:(local rank mod visible GPUs), i.e. cuda:0.
      // `--cpus-per-task` again on srun: Slurm 22.05's srun no longer takes it from the job.
      int tasks_per_node = gpus > 0 ? gpus : std::max(1, (ranks + nodes - 1) / nodes);
      bool multi = nodes * tasks_per_node > 1;
      std::string srun =
          "srun --kill-on-bad-exit=1 --cpus-per-task=" + std::to_string(res.value("cpus", 1)) +
          (gpus > 0 ? " --gpus-per-task=1" : "");
      // The worker command, quoted word by word; {run_json}/{run_dir} become the task's paths.
      std::string command;
      auto wcmd = members.front()
                      .run_json.value("worker", nlohmann::json::object())
                      .value("command", nlohmann::json::array());
      if (wcmd.empty()) wcmd = {worker_binary(), "--spec", "{run_json}"};
      // Placeholders become references to the task's shell variables, the rest is quoted:
      // the same placeholders as the local executor's, anywhere in a word.
      auto task_value = [&](const std::string& k) -> std::optional<std::string> {
        if (k == "run_json") return std::string("\"$run_dir/run.json\"");
        if (k == "run_dir") return std::string("\"$run_dir\"");
        if (k == "run_id") return std::string("\"${run_dir##*/}\"");
        if (k == "stage") return shell_quote(stage);
        return std::nullopt;
      };
      for (auto& w : wcmd) {
        std::string word = replace_fields(w.get<std::string>(), "{", "}", task_value, shell_quote);
        command += " " + (word.empty() ? std::string("''") : word);
      }
      std::string launch =
          multi ? "first=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n1)\n"
                  "export KDX_MASTER_ADDR=$(scontrol show node \"$first\" | sed -n "
                  "'s/.*NodeAddr=\\([^ ]*\\).*/\\1/p' | head -n1)\n" +
                      srun + command + " &"
                : command.substr(1) + " &";
      std::string setup, env;
      auto wk = members.front().run_json.value("worker", nlohmann::json::object());
      if (wk.contains("setup"))
        for (auto& l : wk["setup"]) setup += l.get<std::string>() + "\n";
      if (wk.contains("env"))
        for (auto& [k, v] : wk["env"].items())
          env += "export " + k + "=" + shell_quote(v.get<std::string>()) + "\n";
      for (size_t start = 0; start < members.size(); start += static_cast<size_t>(chunk_max)) {
        size_t end = std::min(members.size(), start + static_cast<size_t>(chunk_max));
        std::string name = "kdx-" + exp + "-" + stage + "-" + dataset;
        std::string tag = name + "-" + std::to_string(static_cast<long>(now_seconds() * 1000)) +
                          "-" + std::to_string(start);
        std::string manifest;
        for (size_t i = start; i < end; ++i) {
          materialize_run(members[i], /*durable=*/false);
          manifest += members[i].run_dir + "\n";
        }
        sync_filesystem(
            slurm_dir);  // one flush for the chunk's run.json files, before any job reads them
        std::string manifest_path = slurm_dir + "/" + tag + ".manifest";
        write_file_atomic(manifest_path, manifest);
        std::string optional;
        if (gpus > 0) optional += "#SBATCH --gres=gpu:" + std::to_string(gpus) + "\n";
        for (auto k : {"partition", "account", "qos"})
          if (!res.value(k, std::string()).empty())
            optional += std::string("#SBATCH --") + k + "=" + res[k].get<std::string>() + "\n";
        int throttle = res.value("array_throttle", 0);
        std::string array = "0-" + std::to_string(end - start - 1) +
                            (throttle > 0 ? "%" + std::to_string(throttle) : "");
        std::map<std::string, std::string> f = {{"JOB_NAME", name},
                                                {"LOG_DIR", slurm_dir + "/logs"},
                                                {"TIME", res.value("time", std::string("1:00:00"))},
                                                {"MEM", res.value("mem", std::string("2G"))},
                                                {"CPUS", std::to_string(res.value("cpus", 1))},
                                                {"NODES", std::to_string(nodes)},
                                                {"TASKS_PER_NODE", std::to_string(tasks_per_node)},
                                                {"ARRAY", array},
                                                {"SIGNAL_LEAD", std::to_string(opt.signal_lead_s)},
                                                {"OPTIONAL_SBATCH", optional},
                                                {"MANIFEST", shell_quote(manifest_path)},
                                                {"SETUP", setup},
                                                {"ENV", env},
                                                {"LAUNCH", launch}};
        std::string script_path = slurm_dir + "/" + tag + ".sbatch";
        write_file_atomic(script_path, render_template(tmpl, f, tmpl_name));
        std::vector<std::string> argv = {"sbatch", "--parsable"};
        if (opt.hold) argv.push_back("--hold");
        auto& deps = group_deps[key];
        if (!deps.empty()) {
          argv.push_back("--dependency=afterok:" + join(deps, ":"));
          argv.push_back("--kill-on-invalid-dep=yes");
        }
        argv.push_back(script_path);
        auto out = slurm_call(argv, opt.command_timeout_s);
        ++rep.sbatch_calls;
        if (out.exit_code != 0)
          throw Error("sbatch refused " + script_path + " (" + std::to_string(end - start) +
                      " runs): " + trim(out.err.empty() ? out.out : out.err));
        std::string job = trim(out.out);
        job = job.substr(0, job.find(';'));  // "123;cluster"
        rep.job_ids.push_back(job);
        Registry::Transaction t(reg);
        for (size_t i = start; i < end; ++i) {
          AttemptRecord a;
          a.run_id = members[i].id;
          a.executor = "slurm";
          a.job_id = job + "_" + std::to_string(i - start);
          a.state = state::kPending;
          a.raw_state = "PENDING";
          a.submit_time = now_seconds();
          a.alloc_cpus = res.value("cpus", 1) * nodes * tasks_per_node;
          a.alloc_gpus = gpus * nodes;
          reg.add_attempt(a);
          reg.set_run_state(members[i].id, state::kPending, "PENDING", "", "slurm");
          ++rep.runs_submitted;
        }
        t.commit();
      }
    }
  }
  return rep;
}

SlurmPollReport reconcile_slurm(Registry& reg, const SlurmOptions& opt) {
  SlurmPollReport rep;
  auto active = reg.active_attempts("slurm");
  if (active.empty()) return rep;
  std::set<std::string> arrays;
  double earliest = now_seconds();
  for (auto& a : active) {
    arrays.insert(array_job_of(a.job_id));
    earliest = std::min(earliest, a.submit_time);
  }
  std::string ids = join(std::vector<std::string>(arrays.begin(), arrays.end()), ",");
  struct Seen {
    std::string state, reason, node;
  };
  std::map<std::string, Seen> queue;
  auto q =
      slurm_call({"squeue", "-h", "-r", "-o", "%i|%T|%r|%N", "-j", ids}, opt.command_timeout_s, 2);
  ++rep.squeue_calls;
  rep.slurm_seconds += q.seconds;
  // squeue answers rc 1 "Invalid job id" once every listed job is purged: that is an empty queue.
  bool queue_ok = q.exit_code == 0 || q.err.find("Invalid job id") != std::string::npos;
  std::istringstream qin(q.out);
  for (std::string line; std::getline(qin, line);) {
    auto f = split(line, '|');
    if (f.size() < 4) continue;
    for (auto& id : expand_array_ids(f[0])) queue[id] = {f[1], f[2], f[3]};
  }
  struct Acct {
    std::string state, exit, tres, node;
    double elapsed = 0;
  };
  std::map<std::string, Acct> acct;
  auto s =
      slurm_call({"sacct", "-n", "-P", "-X", "-j", ids, "--starttime", iso_time(earliest - 86400),
                  "-o", "JobID,State,ExitCode,ElapsedRaw,AllocTRES,NodeList"},
                 opt.command_timeout_s, 2);
  ++rep.sacct_calls;
  rep.slurm_seconds += s.seconds;
  rep.accounting = s.exit_code == 0;
  std::istringstream sin(s.out);
  for (std::string line; std::getline(sin, line);) {
    auto f = split(line, '|');
    if (f.size() < 6) continue;
    for (auto& id : expand_array_ids(f[0]))
      acct[id] = {f[1], f[2], f[4], f[5], std::atof(f[3].c_str())};
  }
  for (auto a : active) {
    auto run = reg.run(a.run_id);
    if (!run) continue;
    std::string tag = a.job_id;
    std::string exit_file = run->run_dir + "/logs/slurm-" + tag + ".exit";
    auto qi = queue.find(a.job_id);
    auto si = acct.find(a.job_id);
    std::string final_state, raw;
    std::optional<int> rc;
    if (qi != queue.end()) {
      std::string st = map_slurm_state(qi->second.state);
      if (st != a.state || qi->second.state != a.raw_state) {
        a.state = st;
        a.raw_state = qi->second.state;
        a.reason = qi->second.reason == "None" ? "" : qi->second.reason;
        if (st == state::kRunning && a.start_time == 0) a.start_time = now_seconds();
        if (!qi->second.node.empty() && qi->second.node != "(null)") a.host = qi->second.node;
        reg.update_attempt(a);
        if (run->state != state::kCancelled) reg.set_run_state(run->id, st, a.raw_state, a.reason);
      }
      continue;
    }
    if (si != acct.end() && is_terminal_slurm(map_slurm_state(si->second.state))) {
      final_state = map_slurm_state(si->second.state);
      raw = si->second.state;
      auto e = split(si->second.exit, ':');
      rc = std::atoi(e[0].c_str());
      a.elapsed_s = si->second.elapsed;
      a.host = si->second.node;
      std::smatch m;
      static const std::regex cpu("cpu=([0-9]+)"), gpu("gres/gpu=([0-9]+)");
      if (std::regex_search(si->second.tres, m, cpu)) a.alloc_cpus = std::atoi(m[1].str().c_str());
      if (std::regex_search(si->second.tres, m, gpu)) a.alloc_gpus = std::atoi(m[1].str().c_str());
    } else if (si == acct.end() && queue_ok) {
      // No accounting (or it lags): the batch script's own exit file tells how the worker ended.
      std::ifstream in;
      if (is_regular_file(exit_file)) in.open(exit_file);
      int code;
      if (!(in >> code)) {
        if (a.raw_state != "UNKNOWN") {
          a.raw_state = "UNKNOWN";
          a.reason = "not in squeue, no accounting record yet";
          reg.update_attempt(a);
        }
        continue;
      }
      rc = code;
      final_state = code == 0          ? state::kCompleted
                    : code == 128 + 15 ? state::kCancelled
                                       : state::kFailed;
      raw = "exit " + std::to_string(code) + " (no accounting)";
    } else {
      continue;  // sacct says it is still running, or squeue failed: unknown, not failed
    }
    a.exit_code = rc;
    a.end_time = now_seconds();
    if (a.elapsed_s == 0 && a.start_time > 0) a.elapsed_s = a.end_time - a.start_time;
    if (a.start_time == 0) a.start_time = a.end_time - a.elapsed_s;  // finished between two polls
    a.raw_state = raw;
    nlohmann::json result;
    if (final_state == state::kCompleted) {
      std::string error;
      result = read_result(run->run_dir, run->id, error);
      if (result.is_null()) {
        final_state = state::kFailed;
        a.reason = "Slurm says COMPLETED but " + error;
      }
    } else {
      std::string tail = last_log_line(run->run_dir + "/logs/slurm-" + tag + ".out");
      a.reason = raw + (tail.empty() ? "" : ": " + tail);
    }
    a.state = final_state;
    reg.finish_attempt(a, result);
  }
  return rep;
}

void cancel_slurm(Registry& reg, const std::vector<RunRecord>& runs) {
  std::vector<std::string> argv = {"scancel"};
  for (auto& r : runs) {
    auto a = reg.last_attempt(r.id);
    if (a && a->executor == "slurm" && state::is_active(a->state)) argv.push_back(a->job_id);
    reg.set_run_state(r.id, state::kCancelled, "CANCELLED", "cancelled by user");
  }
  if (argv.size() == 1) return;
  auto out = slurm_call(argv, 60);
  if (out.exit_code != 0) throw Error("scancel failed: " + trim(out.err));
}

}  // namespace kdx
