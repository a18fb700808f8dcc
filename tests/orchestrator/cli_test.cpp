// End to end through the real kdx binary: submit, status, show, cancel, resubmit.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/test_support.h"

namespace kdx {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("data/runne/train.jsonl", "{}\n");
    dir_.write("data/runne/test.jsonl", "{}\n");
  }
  std::string experiment(const std::string& students, const std::string& teacher = "{hidden: 16}") {
    return dir_.write("exp.yaml",
                      "experiment: cli\n"
                      "datasets: [{name: runne, format: runne, train: runne/train.jsonl, test: "
                      "runne/test.jsonl}]\n"
                      "teacher: " +
                          teacher +
                          "\n"
                          "students:\n" +
                          students +
                          "worker: {command: ['" TOY_WORKER_BIN "', '--spec', '{run_json}']}\n");
  }
  test::CommandResult kdx(std::vector<std::string> args) {
    args.insert(args.begin(), KDX_BIN);
    return test::run_command(args, dir_.path(),
                             {"KDX_DATA_DIR=" + dir_.file("data"), "KDX_TOY_SLEEP_MS=10"});
  }
  nlohmann::json status_json() {
    auto r = kdx({"status", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
  test::TempDir dir_;
};

TEST_F(CliTest, DryRunPrintsPlanAndSubmitsNothing) {
  experiment("  grid: {arch: [lstm, sru], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n");
  auto r = kdx({"submit", "exp.yaml", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  runne: 1 teacher 1 logits 4 student\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6 runs planned; nothing submitted (--dry-run)"), std::string::npos);
  EXPECT_NE(r.out.find("RUN           STAGE    DATASET  ARCH  HIDDEN  LAYERS  LOSS"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(test::file_exists(dir_.file("results/registry.sqlite")));
}

TEST_F(CliTest, SubmitWaitThenResubmitCreatesNothing) {
  experiment("  grid: {hidden: [10, 30, 50], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n");
  auto r = kdx({"submit", "exp.yaml", "--executor", "local", "--jobs", "2", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cli: 8 new runs, 0 already completed (skipped), 0 already pending/running"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("[8/8 done: 8 ok, 0 failed; 0 running, 0 pending]"), std::string::npos)
      << r.err;
  auto rows = status_json();
  ASSERT_EQ(rows.size(), 8u);
  for (auto& row : rows) {
    EXPECT_EQ(row["state"], "COMPLETED");
    EXPECT_EQ(row["attempt"], 1);
  }
  auto again = kdx({"submit", "exp.yaml", "--executor", "local", "--wait"});
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out,
            "cli: 0 new runs, 8 already completed (skipped), 0 already pending/running\n");

  // One new value: only the new student (and nothing upstream) is created.
  experiment("  grid: {hidden: [10, 30, 50, 70], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n");
  auto more = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_NE(more.out.find("cli: 2 new runs, 8 already completed (skipped)"), std::string::npos)
      << more.out;
  EXPECT_EQ(status_json().size(), 10u);

  auto text = kdx({"status"});
  EXPECT_NE(text.out.find("10 runs: 10 COMPLETED"), std::string::npos) << text.out;
  auto id = rows[2]["id"].get<std::string>();
  auto show = kdx({"show", id.substr(0, 6)});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("run        " + id), std::string::npos);
  EXPECT_NE(show.out.find("  f1 = "), std::string::npos) << show.out;
  auto js = nlohmann::json::parse(kdx({"show", id, "--json"}).out);
  EXPECT_EQ(js["attempts"][0]["state"], "COMPLETED");
}

TEST_F(CliTest, FailedRunsAndResubmit) {
  experiment("  grid: {hidden: [10], seed: [1, 666]}\n");
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.out.find(" FAILED: exit code 3: toy worker: seed 666 is cursed"), std::string::npos)
      << r.out;
  auto again = kdx({"resubmit", "--failed", "--wait"});
  EXPECT_NE(again.out.find("resubmitted 1 run\n"), std::string::npos) << again.out;
  int failed_attempts = 0;
  for (auto& row : status_json())
    if (row["state"] == "FAILED") {
      EXPECT_EQ(row["attempt"], 2);  // a new attempt, not a rewrite of the old one
      ++failed_attempts;
    }
  EXPECT_EQ(failed_attempts, 1);
}

TEST_F(CliTest, BackgroundSchedulerAndCancel) {
  experiment("  grid: {hidden: [10]}\n", "{hidden: 16, seed: 777}");
  auto r = kdx({"submit", "exp.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("scheduling in the background"), std::string::npos);
  bool running = false;
  for (int i = 0; i < 100 && !running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (auto& row : status_json()) running = running || row["state"] == "RUNNING";
  }
  ASSERT_TRUE(running);
  auto c = kdx({"cancel", "--experiment", "cli"});
  EXPECT_EQ(c.out, "cancelled 3 runs\n");
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bool all = true;
    for (auto& row : status_json()) all = all && row["state"] == "CANCELLED";
    if (all) break;
  }
  for (auto& row : status_json()) EXPECT_EQ(row["state"], "CANCELLED") << row.dump();
}

TEST_F(CliTest, BadInputLeavesRegistryUnchanged) {
  experiment("  grid: {hidden: [10]}\n");
  ASSERT_EQ(kdx({"submit", "exp.yaml", "--wait"}).exit_code, 0);
  std::string before = test::slurp(dir_.file("results/registry.sqlite"));
  dir_.write("bad.yaml",
             "experiment: cli\ndatasets: [{name: runne, format: runne, train: runne/train.jsonl, "
             "test: nope.jsonl}]\nteacher: {}\nstudents: {}\n");
  auto r = kdx({"submit", "bad.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.substr(0, 73), "kdx: error: bad.yaml:2:73: datasets[0].test: file not found: " +
                                     dir_.file("data").substr(0, 12));
  EXPECT_EQ(test::slurp(dir_.file("results/registry.sqlite")), before);
}

TEST_F(CliTest, UnwritableRunDirectoryIsAnErrorAndNothingIsRegistered) {
  experiment("  grid: {hidden: [10]}\n");
  dir_.write("results/runs", "a file where the runs directory should be");
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kdx: error: cannot create directory " + dir_.file("results/runs/cli") +
                       ": Not a directory\n");
  auto s = kdx({"status"});
  EXPECT_EQ(
      s.out,
      "no runs in results/registry.sqlite (submit one with: kdx submit experiments/smoke.yaml)\n");
}

TEST_F(CliTest, UnknownExperimentAndRun) {
  experiment("  grid: {hidden: [10]}\n");
  ASSERT_EQ(kdx({"submit", "exp.yaml", "--wait"}).exit_code, 0);
  auto r = kdx({"status", "-e", "nope"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kdx: error: no experiment 'nope' in results/registry.sqlite (known: cli)\n");
  auto s = kdx({"show", "zzzz"});
  EXPECT_EQ(s.err, "kdx: error: no run with id 'zzzz' in results/registry.sqlite\n");
}

// --gpus: the local executor's GPU budget, taken from CUDA_VISIBLE_DEVICES.
TEST_F(CliTest, GpusOptionSetsTheLocalGpuBudget) {
  experiment("  grid: {hidden: [10], loss: [{kd_weight: 0}]}\n",
             "{hidden: 16, resources: {gpus_per_node: 2}}");
  auto kdx_with = [&](std::vector<std::string> args, const std::string& visible) {
    args.insert(args.begin(), KDX_BIN);
    return test::run_command(args, dir_.path(),
                             {"KDX_DATA_DIR=" + dir_.file("data"), "KDX_TOY_SLEEP_MS=10",
                              "CUDA_VISIBLE_DEVICES=" + visible});
  };
  auto bad = kdx_with({"submit", "exp.yaml", "--executor", "local", "--gpus", "3"}, "4,6");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "kdx: error: --gpus 3: CUDA_VISIBLE_DEVICES='4,6' names only 2 GPUs\n");
  EXPECT_FALSE(test::file_exists(dir_.file("results/registry.sqlite")));

  auto r = kdx_with({"submit", "exp.yaml", "--executor", "local", "--gpus", "1", "--wait"}, "4,6");
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  auto rows = status_json();
  ASSERT_EQ(rows.size(), 2u);
  std::string teacher = rows[0]["id"];
  EXPECT_EQ(rows[0]["state"], "FAILED");
  std::string why = "run " + teacher +
                    " asks for 2 GPUs (resources.gpus_per_node) but the local executor has 1 "
                    "(--gpus 1)";
  EXPECT_EQ(rows[0]["reason"], why);
  EXPECT_NE(r.err.find(why), std::string::npos) << r.err;

  // The default: every GPU CUDA_VISIBLE_DEVICES names; the run's 2 ranks see both.
  auto again = kdx_with({"resubmit", "--failed", "--wait"}, "4,6");
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  for (auto& row : status_json()) EXPECT_EQ(row["state"], "COMPLETED") << row.dump();
  for (int rank = 0; rank < 2; ++rank) {
    auto env = nlohmann::json::parse(test::slurp(
        dir_.file("results/runs/cli/" + teacher + "/toy-env-" + std::to_string(rank) + ".json")));
    EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "4,6");
    EXPECT_EQ(env["LOCAL_RANK"], std::to_string(rank));
  }
  for (auto cmd : {"submit", "resubmit"}) {
    auto help = kdx({cmd, "--help"});
    EXPECT_NE(help.out.find("--gpus"), std::string::npos) << help.out;
  }
}

TEST_F(CliTest, HelpListsEverySubcommand) {
  auto r = kdx({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (auto cmd : {"submit", "status", "show", "cancel", "resubmit"})
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

class CliHabits : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("data/runne/train.jsonl", "{}\n");
    dir_.write("data/runne/test.jsonl", "{}\n");
    dir_.write("exp.yaml",
               "experiment: habits\n"
               "datasets: [{name: runne, format: runne, train: runne/train.jsonl, test: "
               "runne/test.jsonl}]\n"
               "teacher: {hidden: 16}\n"
               "students:\n  grid: {hidden: [10, 20]}\n"
               "worker: {command: ['" TOY_WORKER_BIN "', '--spec', '{run_json}']}\n");
  }
  test::CommandResult kdx(std::vector<std::string> args) {
    args.insert(args.begin(), KDX_BIN);
    return test::run_command(args, dir_.path(), {"KDX_DATA_DIR=" + dir_.file("data")});
  }
  test::TempDir dir_;
};

// Options of kdx itself go before or after the subcommand, as git's and Slurm's do.
TEST_F(CliHabits, GlobalOptionsAfterTheSubcommand) {
  auto before = kdx({"--registry", "r1.sqlite", "submit", "exp.yaml", "--wait"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  auto after = kdx({"submit", "exp.yaml", "--wait", "--registry", "r2.sqlite"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_TRUE(test::file_exists(dir_.file("r2.sqlite")));
  auto dry = kdx({"submit", "exp.yaml", "--dry-run", "--registry", "r3.sqlite"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  auto status = kdx({"status", "--registry", "r2.sqlite", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out).size(), 4u);  // teacher, logits, 2 students
  auto level = kdx({"status", "--registry", "r2.sqlite", "--log-level", "debug"});
  EXPECT_EQ(level.exit_code, 0) << level.err;
  auto bad = kdx({"status", "--log-level", "loud"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err,
            "kdx: error: log level 'loud' is not one of: trace, debug, info, warning, error, "
            "off\n");
}

TEST_F(CliHabits, LogsPrintsAnAttemptsLogAndFiltersRanks) {
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = nlohmann::json::parse(kdx({"status", "--json"}).out);
  std::string id = rows[1]["id"];
  // The toy worker's own lines are in its attempt's log.
  auto logs = kdx({"logs", id.substr(0, 6)});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  auto run_dir = dir_.file("results/runs/habits/" + id);
  EXPECT_EQ(logs.out, test::slurp(run_dir + "/logs/attempt-1.log"));
  // A data-parallel log: each rank's lines, plus the untagged ones.
  std::string mixed =
      "2026-01-01 00:00:00.000 info    kdx-worker rank 0/2: epoch 1\n"
      "2026-01-01 00:00:00.001 info    kdx-worker rank 1/2: epoch 1\n"
      "kdx: job line\n"
      "2026-01-01 00:00:00.002 info    kdx-worker rank 1/2: done\n";
  dir_.write("results/runs/habits/" + id + "/logs/attempt-1.log", mixed);
  auto rank1 = kdx({"logs", id, "--rank", "1"});
  EXPECT_EQ(rank1.out,
            "2026-01-01 00:00:00.001 info    kdx-worker rank 1/2: epoch 1\n"
            "kdx: job line\n"
            "2026-01-01 00:00:00.002 info    kdx-worker rank 1/2: done\n");
  auto missing = kdx({"logs", id, "--attempt", "3"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "kdx: error: run " + id + " has 1 attempt(s), not 3\n");
}

// -f keeps printing until the attempt ends; it returns by itself.
TEST_F(CliHabits, LogsFollowsARunningAttemptToItsEnd) {
  dir_.write("exp.yaml",
             "experiment: follow\n"
             "datasets: [{name: runne, format: runne, train: runne/train.jsonl, test: "
             "runne/test.jsonl}]\n"
             "teacher: {hidden: 16}\n"
             "students:\n  grid: {hidden: [10]}\n"
             "worker: {command: ['" TOY_WORKER_BIN
             "', '--spec', '{run_json}'],\n"
             "         env: {KDX_TOY_SLEEP_MS: '1500'}}\n");
  ASSERT_EQ(kdx({"submit", "exp.yaml"}).exit_code, 0);  // background scheduler
  std::string id;
  for (int i = 0; i < 100 && id.empty(); ++i) {
    auto rows = nlohmann::json::parse(kdx({"status", "--json"}).out);
    for (auto& row : rows)
      if (row["state"] == "RUNNING") id = row["id"];
    if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(id.empty()) << "no run started";
  auto f = kdx({"logs", id, "-f"});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.out.find("toy worker: run " + id), std::string::npos) << f.out;
  auto rows = nlohmann::json::parse(kdx({"status", "--json"}).out);
  for (auto& row : rows)
    if (row["id"] == id) {
      EXPECT_NE(row["state"], "RUNNING");
    }
  kdx({"cancel", "-e", "follow"});
}

}  // namespace
}  // namespace kdx
