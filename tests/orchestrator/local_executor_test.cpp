#include "orchestrator/local_executor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "orchestrator/planner.h"
#include "orchestrator/process.h"
#include "orchestrator/run_state.h"
#include "orchestrator/submit.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

// Plans a small experiment whose worker is the real toy_worker program.
class LocalExecutorTest : public ::testing::Test {
 protected:
  void submit(const std::string& students, const std::string& teacher = "{hidden: 16}",
              int sleep_ms = 20) {
    std::string yaml =
        "experiment: le\n"
        "datasets: [{name: d, format: runne, train: t.jsonl, test: t.jsonl}]\n"
        "teacher: " +
        teacher +
        "\n"
        "students:\n" +
        students +
        "worker: {command: ['" TOY_WORKER_BIN
        "', '--spec', '{run_json}'], env: {KDX_TOY_SLEEP_MS: '" +
        std::to_string(sleep_ms) + "'}}\n";
    SpecOptions o;
    o.check_data_files = false;
    spec_ = parse_spec_text(yaml, "le.yaml", o);
    plan_ = make_plan(spec_, dir_.path());
    register_plan(reg_, plan_, spec_, yaml, "local");
  }
  // What each rank of a run's toy worker was given (toy-env-<rank>.json), rank by rank.
  static std::vector<nlohmann::json> envs_of(const RunRecord& r) {
    std::vector<nlohmann::json> envs;
    for (int rank = 0;; ++rank) {
      std::string f = r.run_dir + "/toy-env-" + std::to_string(rank) + ".json";
      if (!test::file_exists(f)) return envs;
      envs.push_back(nlohmann::json::parse(read_input(f, InputKind::Data)));
    }
  }
  RunRecord run_of(const std::string& stage, int index = 0) {
    for (auto& r : reg_.runs("le"))
      if (r.stage == stage && index-- == 0) return r;
    ADD_FAILURE() << "no " << stage << " run";
    return {};
  }
  // Pairs of student attempts that ran at the same time.
  int student_overlaps() {
    std::vector<std::pair<double, double>> spans;
    for (auto& r : reg_.runs("le"))
      if (r.stage == "student")
        if (auto a = reg_.last_attempt(r.id)) spans.emplace_back(a->start_time, a->end_time);
    int n = 0;
    for (size_t i = 0; i < spans.size(); ++i)
      for (size_t j = i + 1; j < spans.size(); ++j)
        n += spans[i].first < spans[j].second && spans[j].first < spans[i].second;
    return n;
  }
  std::map<std::string, int> count_states() {
    std::map<std::string, int> n;
    for (auto& r : reg_.runs("le")) ++n[r.state];
    return n;
  }
  test::TempDir dir_;
  Registry reg_{dir_.file("registry.sqlite")};
  Spec spec_;
  Plan plan_;
};

TEST_F(LocalExecutorTest, RunsDagToCompletionAndIngests) {
  submit("  grid: {hidden: [10, 30], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n");
  LocalOptions opt;
  opt.experiment = "le";
  opt.jobs = 2;
  opt.poll_interval_s = 0.05;
  std::vector<Progress> seen;
  opt.on_progress = [&](const Progress& p) { seen.push_back(p); };
  EXPECT_EQ(run_local(reg_, opt), 0);
  EXPECT_EQ(count_states(), (std::map<std::string, int>{{"COMPLETED", 6}}));
  // Dependencies ran first: every run started after all its deps ended.
  for (auto& r : reg_.runs("le")) {
    auto a = reg_.last_attempt(r.id);
    ASSERT_TRUE(a);
    for (auto& d : r.deps) EXPECT_GE(a->start_time, reg_.last_attempt(d)->end_time);
    EXPECT_EQ(a->exit_code.value_or(-1), 0);
    EXPECT_TRUE(test::file_exists(attempt_log(r.run_dir, 1, "log")));
  }
  for (auto& r : reg_.runs("le")) {
    if (r.stage != "student") continue;
    double hidden = r.config["params"]["hidden"].get<double>();
    EXPECT_DOUBLE_EQ(reg_.metrics(r.id)["f1"].get<double>(), hidden / (hidden + 100));
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().completed, 6);
  EXPECT_EQ(seen.back().total, 6);
}

// Runs of 2 cores each under a 2-core budget never overlap, whatever --jobs allows; without
// the budget the same plan runs them side by side (the control that the check can fail).
TEST_F(LocalExecutorTest, CpuBudgetKeepsRunsFromOversubscribing) {
  submit(
      "  grid: {hidden: [10, 20, 30, 40], loss: [{kd_weight: 0}]}\n"
      "  resources: {cpus: 2}\n");
  auto overlaps = [&] {
    std::vector<std::pair<double, double>> spans;
    for (auto& r : reg_.runs("le"))
      if (r.stage == "student") {
        auto a = reg_.last_attempt(r.id);
        if (a) spans.emplace_back(a->start_time, a->end_time);
      }
    EXPECT_EQ(spans.size(), 4u);
    int n = 0;
    for (size_t i = 0; i < spans.size(); ++i)
      for (size_t j = i + 1; j < spans.size(); ++j)
        n += spans[i].first < spans[j].second && spans[j].first < spans[i].second;
    return n;
  };
  LocalOptions opt;
  opt.experiment = "le";
  opt.jobs = 4;
  opt.cpus = 2;
  opt.poll_interval_s = 0.05;
  ASSERT_EQ(run_local(reg_, opt), 0);
  EXPECT_EQ(count_states(), (std::map<std::string, int>{{"COMPLETED", 5}}));
  EXPECT_EQ(overlaps(), 0);

  for (auto& r : reg_.runs("le"))
    if (r.stage == "student") reg_.set_run_state(r.id, state::kPending, "PENDING", "");
  opt.cpus = 0;
  ASSERT_EQ(run_local(reg_, opt), 0);
  EXPECT_GT(overlaps(), 0);
}

// GPUs: each run holds resources.gpus_per_node entries of the budget's list and sees exactly
// those; a CPU run on a machine with GPUs sees none.
TEST_F(LocalExecutorTest, TwoOneGpuRunsShareATwoGpuBudgetOnDistinctGpus) {
  submit(
      "  grid: {hidden: [10, 20], loss: [{kd_weight: 0}]}\n"
      "  resources: {gpus_per_node: 1}\n",
      "{hidden: 16}", 400);
  LocalOptions opt;
  opt.experiment = "le";
  opt.jobs = 4;
  opt.gpus = {"3", "5"};  // as from CUDA_VISIBLE_DEVICES=3,5
  opt.poll_interval_s = 0.05;
  ASSERT_EQ(run_local(reg_, opt), 0);
  EXPECT_EQ(count_states(), (std::map<std::string, int>{{"COMPLETED", 3}}));
  EXPECT_EQ(student_overlaps(), 1);  // side by side
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    auto envs = envs_of(run_of("student", i));
    ASSERT_EQ(envs.size(), 1u);  // one GPU, one rank
    seen.insert(envs[0]["CUDA_VISIBLE_DEVICES"].get<std::string>());
    EXPECT_EQ(envs[0]["WORLD_SIZE"], nullptr);
    EXPECT_EQ(reg_.last_attempt(run_of("student", i).id)->alloc_gpus, 1);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"3", "5"}));
  auto teacher = envs_of(run_of("teacher"));
  ASSERT_EQ(teacher.size(), 1u);
  EXPECT_EQ(teacher[0]["CUDA_VISIBLE_DEVICES"], "");  // set, and empty: no GPU for a CPU run
}

TEST_F(LocalExecutorTest, OneGpuBudgetRunsOneGpuRunsOneAfterTheOther) {
  submit(
      "  grid: {hidden: [10, 20], loss: [{kd_weight: 0}]}\n"
      "  resources: {gpus_per_node: 1}\n",
      "{hidden: 16}", 400);
  LocalOptions opt;
  opt.experiment = "le";
  opt.jobs = 4;  // the GPU budget, not --jobs or the (unlimited) cores, keeps them apart
  opt.gpus = {"0"};
  opt.poll_interval_s = 0.05;
  ASSERT_EQ(run_local(reg_, opt), 0);
  EXPECT_EQ(count_states(), (std::map<std::string, int>{{"COMPLETED", 3}}));
  EXPECT_EQ(student_overlaps(), 0);
  for (int i = 0; i < 2; ++i) {
    auto envs = envs_of(run_of("student", i));
    ASSERT_EQ(envs.size(), 1u);
    EXPECT_EQ(envs[0]["CUDA_VISIBLE_DEVICES"], "0");
  }
}

TEST_F(LocalExecutorTest, RunAskingMoreGpusThanTheBudgetFailsAtOnce) {
  submit("  grid: {hidden: [10], loss: [{kd_weight: 0}]}\n",
         "{hidden: 16, resources: {gpus_per_node: 2}}");
  LocalOptions opt;
  opt.experiment = "le";
  opt.gpus = {"0"};
  opt.poll_interval_s = 0.05;
  EXPECT_EQ(run_local(reg_, opt), 2);
  auto teacher = run_of("teacher");
  EXPECT_EQ(teacher.state, "FAILED");
  EXPECT_EQ(teacher.raw_state, "NOT_ENOUGH_GPUS");
  EXPECT_EQ(teacher.reason, "run " + teacher.id +
                                " asks for 2 GPUs (resources.gpus_per_node) but the local "
                                "executor has 1 (--gpus 1)");
  EXPECT_FALSE(reg_.last_attempt(teacher.id));  // never started
  EXPECT_EQ(run_of("student").state, "CANCELLED");
  // Without any GPU the same: the run is not quietly run on the CPU.
  reg_.set_run_state(teacher.id, state::kPending, "PENDING", "");
  reg_.set_run_state(run_of("student").id, state::kPending, "PENDING", "");
  opt.gpus = {};
  EXPECT_EQ(run_local(reg_, opt), 2);
  EXPECT_EQ(run_of("teacher").reason, "run " + teacher.id +
                                          " asks for 2 GPUs (resources.gpus_per_node) but the "
                                          "local executor has 0 (--gpus 0)");
}

// G GPUs mean G ranks (kdx-worker --nproc G), each seeing all G: rank r takes cuda:r.
TEST_F(LocalExecutorTest, TwoGpuRunStartsTwoRanksOverItsGpus) {
  submit("  grid: {hidden: [10], loss: [{kd_weight: 0}]}\n  resources: {gpus_per_node: 2}\n");
  LocalOptions opt;
  opt.experiment = "le";
  opt.gpus = {"0", "1", "2"};
  opt.poll_interval_s = 0.05;
  ASSERT_EQ(run_local(reg_, opt), 0);
  auto student = run_of("student");
  auto envs = envs_of(student);
  ASSERT_EQ(envs.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(envs[r]["LOCAL_RANK"], std::to_string(r));
    EXPECT_EQ(envs[r]["WORLD_SIZE"], "2");
    EXPECT_EQ(envs[r]["CUDA_VISIBLE_DEVICES"], "0,1");
    EXPECT_EQ(envs[r]["OMP_NUM_THREADS"], "1");  // its cpus per rank
  }
  auto a = reg_.last_attempt(student.id);
  EXPECT_EQ(a->alloc_gpus, 2);
  EXPECT_EQ(a->alloc_cpus, 2);  // cpus (1) for each of 2 ranks
  EXPECT_EQ(test::slurp(attempt_log(student.run_dir, 1, "gpus")), "0,1\n");
  EXPECT_EQ(envs_of(run_of("teacher")).size(), 1u);  // no GPU, one rank
}

// No GPU budget: kdx leaves CUDA_VISIBLE_DEVICES as it found it.
TEST_F(LocalExecutorTest, WithoutGpusTheEnvironmentIsLeftAlone) {
  submit("  grid: {hidden: [10], loss: [{kd_weight: 0}]}\n");
  const char* before = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string saved = before ? before : "";
  ::setenv("CUDA_VISIBLE_DEVICES", "7", 1);
  LocalOptions opt;
  opt.experiment = "le";
  opt.poll_interval_s = 0.05;
  EXPECT_EQ(run_local(reg_, opt), 0);
  if (before)
    ::setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
  else
    ::unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(envs_of(run_of("teacher"))[0]["CUDA_VISIBLE_DEVICES"], "7");
  EXPECT_EQ(envs_of(run_of("student"))[0]["CUDA_VISIBLE_DEVICES"], "7");
}

TEST(LocalGpus, BudgetComesFromCudaVisibleDevices) {
  const char* before = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string saved = before ? before : "";
  ::setenv("CUDA_VISIBLE_DEVICES", "2,3", 1);
  EXPECT_EQ(detect_local_gpus(), 2);
  EXPECT_EQ(local_gpu_ids(1), (std::vector<std::string>{"2"}));
  EXPECT_EQ(local_gpu_ids(2), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(local_gpu_ids(0), (std::vector<std::string>{}));
  try {
    local_gpu_ids(3);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--gpus 3: CUDA_VISIBLE_DEVICES='2,3' names only 2 GPUs");
  }
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  EXPECT_EQ(detect_local_gpus(), 0);
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(local_gpu_ids(2), (std::vector<std::string>{"0", "1"}));  // device files' indices
  if (before) ::setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
}

TEST_F(LocalExecutorTest, FailureIsRecordedAndDownstreamCancelled) {
  submit("  grid: {hidden: [10]}\n", "{hidden: 16, seed: 666}");  // the teacher fails
  LocalOptions opt;
  opt.experiment = "le";
  opt.poll_interval_s = 0.05;
  EXPECT_EQ(run_local(reg_, opt), 3);
  for (auto& r : reg_.runs("le")) {
    if (r.stage == "teacher") {
      EXPECT_EQ(r.state, "FAILED");
      EXPECT_EQ(r.raw_state, "exit 3");
      EXPECT_EQ(r.reason, "exit code 3: toy worker: seed 666 is cursed");
    } else {
      EXPECT_EQ(r.state, "CANCELLED");
      EXPECT_EQ(r.raw_state, "DEPENDENCY_NEVER_SATISFIED");
      EXPECT_EQ(r.reason.substr(0, 13), "upstream run ");
    }
  }
}

TEST_F(LocalExecutorTest, CancelKillsTheWorker) {
  submit("  grid: {hidden: [10]}\n", "{hidden: 16, seed: 777}");  // the teacher sleeps until killed
  LocalOptions opt;
  opt.experiment = "le";
  opt.poll_interval_s = 0.05;
  std::thread canceller([&] {
    Registry other(dir_.file("registry.sqlite"));  // a second kdx process would do the same
    for (int i = 0; i < 200; ++i) {
      auto runs = other.runs("le");
      if (runs[0].state == "RUNNING" && other.last_attempt(runs[0].id)->pid > 0) {
        cancel_local(other, runs[0]);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  run_local(reg_, opt);
  canceller.join();
  auto runs = reg_.runs("le");
  EXPECT_EQ(runs[0].state, "CANCELLED");
  auto a = reg_.last_attempt(runs[0].id);
  EXPECT_EQ(a->state, "CANCELLED");
  EXPECT_EQ(a->raw_state, "signal 15");
  EXPECT_FALSE(process_alive(static_cast<pid_t>(a->pid)));
}

TEST_F(LocalExecutorTest, TimeLimitSendsTermThenTimeout) {
  submit("  grid: {hidden: [10]}\n",
         "{hidden: 16, seed: 777, resources: {time: '0:01'}}");  // MM:SS
  LocalOptions opt;
  opt.experiment = "le";
  opt.poll_interval_s = 0.05;
  run_local(reg_, opt);
  auto teacher = reg_.runs("le")[0];
  EXPECT_EQ(teacher.state, "TIMEOUT");
  EXPECT_EQ(teacher.reason, "time limit 0:01 reached");
}

TEST_F(LocalExecutorTest, OrphanedRunIsReconciledByALaterProcess) {
  submit("  grid: {hidden: [10]}\n");
  // Launch the teacher, then "lose" the scheduler: no run_local loop is watching.
  auto runs = reg_.runs("le");
  LocalOptions opt;
  opt.experiment = "le";
  opt.jobs = 1;
  // One manual scheduling step through a child kdx-like process: fork, schedule one pass, die.
  pid_t pid = ::fork();
  if (pid == 0) {
    Registry r(dir_.file("registry.sqlite"));
    LocalOptions o = opt;
    o.on_progress = [](const Progress&) { ::_exit(0); };  // dies right after the first launch
    run_local(r, o);
    ::_exit(1);
  }
  int status;
  ::waitpid(pid, &status, 0);
  auto teacher = reg_.run(runs[0].id);
  EXPECT_EQ(teacher->state, "RUNNING");
  // The worker finishes on its own; a later `kdx status` (reconcile) ingests it.
  for (int i = 0; i < 100 && reg_.run(runs[0].id)->state == "RUNNING"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reconcile_local(reg_);
  }
  EXPECT_EQ(reg_.run(runs[0].id)->state, "COMPLETED");
}

TEST_F(LocalExecutorTest, LostProcessWithoutExitStatusIsFailed) {
  submit("  grid: {hidden: [10]}\n");
  auto runs = reg_.runs("le");
  AttemptRecord a;
  a.run_id = runs[0].id;
  a.executor = "local";
  a.state = state::kRunning;
  a.start_time = now_seconds() - 5;
  a.pid = 999999;  // no such process
  a.pid_start = 1;
  reg_.add_attempt(a);
  reg_.set_run_state(a.run_id, state::kRunning, "RUNNING", "");
  reconcile_local(reg_);
  auto r = reg_.run(a.run_id);
  EXPECT_EQ(r->state, "FAILED");
  EXPECT_EQ(r->raw_state, "LOST");
}

TEST(Process, LaunchFailureIsReported) {
  test::TempDir dir;
  LaunchSpec spec;
  spec.argv = {"/nonexistent/worker"};
  spec.stdout_path = dir.file("o");
  spec.stderr_path = dir.file("e");
  spec.exit_path = dir.file("x");
  try {
    launch_detached(spec);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot run '/nonexistent/worker': No such file or directory");
  }
}

}  // namespace
}  // namespace kdx
