#include "orchestrator/submit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"
#include "orchestrator/run_state.h"

namespace kdx {
namespace {}  // namespace

void check_run_dir(const std::string& run_dir) {
  // A run directory (or its logs/) that is a symbolic link would have kdx write run.json and
  // logs, and delete a stale result.json, wherever the link points.
  for (auto p : {run_dir, run_dir + "/logs"}) {
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      throw Error(p +
                  ": is a symbolic link; kdx writes run directories only where they are "
                  "(remove the link and submit again)");
  }
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
    reg.insert_run(r);
    ++sum.created;
  }
  t.commit();
  return sum;
}

}  // namespace kdx
