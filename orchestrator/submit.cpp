#include "orchestrator/submit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"
#include "orchestrator/result_schema.h"
#include "orchestrator/run_state.h"

namespace kdx {
namespace {

bool is_symlink(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

}  // namespace

namespace {

void refuse_link(const std::string& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    throw Error(p +
                ": is a symbolic link; kdx writes run directories only where they are "
                "(remove the link and submit again)");
}

}  // namespace

void check_run_dir(const std::string& run_dir) {
  // A run directory, a directory above it inside results/ (runs/, runs/<experiment>), or one
  // it holds (logs/, checkpoint/) that is a symbolic link would have kdx and the worker write
  // run.json, logs and checkpoints, and delete a stale result.json, wherever the link points.
  // The results directory itself may be a link (to a scratch filesystem): the user chose it.
  std::string exp_dir = run_dir.substr(0, run_dir.rfind('/'));
  std::string runs_dir = exp_dir.substr(0, exp_dir.rfind('/'));
  for (auto p : {runs_dir, exp_dir, run_dir, run_dir + "/logs", run_dir + "/checkpoint"})
    refuse_link(p);
}

void materialize_run(const RunRecord& run, bool durable) {
  check_run_dir(run.run_dir);
  make_dirs(run.run_dir + "/logs");
  write_file_atomic(run.run_dir + "/run.json", run.run_json.dump(2) + "\n", durable);
}

nlohmann::json full_run_json(const PlannedRun& run, const Spec& spec) {
  nlohmann::json j = make_run_json(run, spec);
  j["worker"] = {{"command", spec.worker.command},
                 {"env", spec.worker.env},
                 {"setup", spec.worker.setup},
                 {"sbatch_template", spec.worker.sbatch_template}};
  return j;
}

SubmitSummary register_plan(Registry& reg, const Plan& plan, const Spec& spec,
                            const std::string& spec_text, const std::string& executor) {
  SubmitSummary sum;
  Registry::Transaction t(reg);
  reg.upsert_experiment(plan.experiment, spec.file, spec_text);
  if (!plan.runs.empty()) {
    std::string dir = plan.runs.front().run_dir;
    dir = dir.substr(0, dir.rfind('/'));
    // Before anything is created through a link above the run directories.
    refuse_link(dir.substr(0, dir.rfind('/')));
    refuse_link(dir);
    make_dirs(dir);
    // Prove the directory writable now, not when the first run starts.
    std::string probe = dir + "/.kdx-write-test";
    write_file_atomic(probe, "", /*durable=*/false);
    ::unlink(probe.c_str());
  }
  int seq = 0;
  for (auto& p : plan.runs) {
    ++seq;
    auto existing = reg.run(p.id);
    if (existing) {
      if (existing->state == state::kCompleted)
        ++sum.completed;
      else if (state::is_active(existing->state))
        ++sum.active;
      else
        ++sum.failed;
      continue;
    }
    RunRecord r;
    r.id = p.id;
    r.experiment = plan.experiment;
    r.stage = p.stage;
    r.dataset = p.dataset;
    r.config = p.config;
    r.run_json = full_run_json(p, spec);
    r.deps = p.deps;
    r.run_dir = p.run_dir;
    r.state = state::kPending;
    r.raw_state = "PENDING";
    r.executor = executor;
    r.seq = seq;
    // A finished run whose registry row is gone (a registry moved aside after damage, or a
    // results directory copied from elsewhere) is recorded from its result.json, not re-run:
    // its id is the hash of the same resolved config, and result.json is written last.
    std::string why;
    nlohmann::json result;
    if (!is_symlink(r.run_dir) && file_exists(r.run_dir + "/result.json"))
      result = read_result(r.run_dir, r.id, why);
    if (!result.is_null()) {
      r.state = state::kCompleted;
      r.raw_state = "RECORDED";
      r.reason = "recorded from " + r.run_dir + "/result.json";
      reg.insert_run(r);
      reg.record_result(r.id, result);
      ++sum.completed;
      ++sum.recorded;
      continue;
    }
    reg.insert_run(r);
    ++sum.created;
  }
  t.commit();
  return sum;
}

}  // namespace kdx
