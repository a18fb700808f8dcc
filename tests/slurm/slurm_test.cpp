// The Slurm executor against a real cluster on this machine: slurmctld, two slurmd
// (emulated nodes), slurmdbd with MariaDB, munge, all started by slurm/cluster for this
// test binary and always stopped at its end. MaxArraySize is 5, so arrays must be chunked.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/test_support.h"

namespace kdx {
namespace {

std::string g_cluster_dir, g_conf;
std::vector<std::string> g_cluster_env;  // for slurm/cluster's chaos commands

test::CommandResult cluster(std::vector<std::string> args) {
  args.insert(args.begin(), KDX_SOURCE_DIR "/slurm/cluster");
  return test::run_command(args, "", g_cluster_env);
}

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_cluster_dir = dir_.path() + "/cluster";
    std::string port = std::to_string(17000 + (::getpid() % 400) * 60);
    env_ = {"SLURM_LOCAL_DIR=" + g_cluster_dir, "PORT_BASE=" + port, "NODES=2", "NODE_CPUS=2",
            "NODE_GPUS=2", "MAX_ARRAY_SIZE=5", "WITH_DBD=1", "MIN_JOB_AGE=600",
            // A dead node is noticed within seconds (Slurm's default is 300).
            "SLURMD_TIMEOUT=10"};
    g_cluster_env = env_;
    auto up = test::run_command({KDX_SOURCE_DIR "/slurm/cluster", "up"}, "", env_);
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    g_conf = g_cluster_dir + "/etc/slurm.conf";
  }
  void TearDown() override {
    auto down = test::run_command({KDX_SOURCE_DIR "/slurm/cluster", "down"}, "", env_);
    EXPECT_EQ(down.exit_code, 0) << down.err;
  }

 private:
  test::TempDir dir_;
  std::vector<std::string> env_;
};

class Slurm : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = test::shared_data_dir();
    ASSERT_FALSE(data_.empty());
  }
  test::CommandResult kdx(std::vector<std::string> args) {
    args.insert(args.begin(), KDX_BIN);
    return test::run_command(
        args, dir_.path(),
        {"SLURM_CONF=" + g_conf, "KDX_DATA_DIR=" + data_, "KDX_TOY_SLEEP_MS=10"});
  }
  test::CommandResult slurm(std::vector<std::string> args) {
    return test::run_command(args, "", {"SLURM_CONF=" + g_conf});
  }
  std::string experiment(const std::string& name, const std::string& teacher,
                         const std::string& students, const std::string& extra = "") {
    return dir_.write(name + ".yaml",
                      "experiment: " + name +
                          "\n"
                          "datasets:\n  - {name: runne, format: runne, train: runne/train.jsonl, "
                          "test: [runne/test.jsonl, runne/test_with_answers.jsonl]}\n"
                          "teacher: " +
                          teacher + "\nstudents:\n" + students + extra);
  }
  nlohmann::json status(const std::string& exp) {
    auto r = kdx({"status", "--json", "-e", exp});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out.empty() ? "[]" : r.out);
  }
  // Polls kdx status until `done` holds or the time is up.
  bool wait_until(const std::string& exp, const std::function<bool(const nlohmann::json&)>& done,
                  int seconds) {
    for (int i = 0; i < seconds; ++i) {
      if (done(status(exp))) return true;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return false;
  }
  std::string job_of(const std::string& exp, const std::string& stage) {
    auto runs = status(exp);
    for (auto& r : runs)
      if (r["stage"] == stage) {
        auto show = nlohmann::json::parse(kdx({"show", r["id"], "--json"}).out);
        return show["attempts"].back()["job_id"];
      }
    return "";
  }
  std::string data_;
  test::TempDir dir_;
};

const char* kTinyTeacher =
    "{layers: 1, hidden: 16, heads: 2, ffn: 32, vocab_size: 1500, epochs: 1, batch_size: 8, "
    "max_train_docs: 12, "
    "max_test_docs: 2, resources: {cpus: 1, mem: 1G, time: '10:00'}}";
const char* kToy = "worker: {command: ['" TOY_WORKER_BIN "', '--spec', '{run_json}']}\n";

TEST_F(Slurm, GridOfRealWorkerRunsInChunkedArraysWithDependencies) {
  experiment("grid", kTinyTeacher,
             "  fixed: {epochs: 1, emb: 8, max_test_docs: 2}\n"
             "  grid: {arch: [lstm, sru], hidden: [8, 16], seed: [1, 2, 3, 4, 5]}\n"
             "  resources: {cpus: 1, mem: 1G, time: '10:00', array_throttle: 4}\n");
  auto r = kdx({"submit", "grid.yaml", "--executor", "slurm", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // teacher (1) + logits (1) + 20 students in chunks of MaxArraySize 5 (4) = 6 sbatch calls.
  EXPECT_NE(r.out.find("submitted 22 runs in 6 sbatch calls"), std::string::npos) << r.out;
  auto runs = status("grid");
  ASSERT_EQ(runs.size(), 22u);
  // Students need the logits file: each one completing shows the afterok chain held.
  for (auto& run : runs) EXPECT_EQ(run["state"], "COMPLETED") << run.dump();
  auto show = nlohmann::json::parse(kdx({"show", runs.back()["id"], "--json"}).out);
  EXPECT_EQ(show["attempts"][0]["executor"], "slurm");
  double f1 = show["metrics"]["f1"].get<double>();  // the official score, ingested from result.json
  EXPECT_GE(f1, 0.0);
  EXPECT_LE(f1, 1.0);
  EXPECT_GT(show["metrics"]["params"].get<double>(), 0);
  EXPECT_NE(show["attempts"][0]["job_id"].get<std::string>().find('_'), std::string::npos);
  // Cost recorded from sacct: allocated CPUs and elapsed time per attempt.
  auto rep = nlohmann::json::parse(kdx({"report", "-e", "grid", "--format", "json"}).out);
  EXPECT_GT(rep["cpu_hours"].get<double>(), 0);
  // Submitting again creates nothing and calls sbatch no more.
  auto again = kdx({"submit", "grid.yaml", "--executor", "slurm"});
  EXPECT_EQ(again.out,
            "grid: 0 new runs, 22 already completed (skipped), 0 already pending/running\n");
}

TEST_F(Slurm, FailingTaskIsRecordedAndResubmittedAlone) {
  experiment("fail", "{hidden: 16}",
             "  grid: {hidden: [8], seed: [1, 666, 2], loss: [{kd_weight: 0}]}\n", kToy);
  auto r = kdx({"submit", "fail.yaml", "--executor", "slurm", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  int failed = 0;
  for (auto& run : status("fail")) {
    if (run["state"] == "FAILED") {
      ++failed;
      EXPECT_NE(run["reason"].get<std::string>().find("toy worker: seed 666 is cursed"),
                std::string::npos)
          << run.dump();
    } else {
      EXPECT_EQ(run["state"], "COMPLETED");
    }
  }
  EXPECT_EQ(failed, 1);
  auto again = kdx({"resubmit", "--failed", "-e", "fail", "--wait"});
  EXPECT_NE(again.out.find("resubmitted 1 run\nsubmitted 1 runs in 1 sbatch call"),
            std::string::npos)
      << again.out;
  for (auto& run : status("fail"))
    if (run["state"] == "FAILED") {
      EXPECT_EQ(run["attempt"], 2);
    }
}

TEST_F(Slurm, CancelStopsRunningAndDependentJobs) {
  experiment("cancel", "{hidden: 16, seed: 777}", "  grid: {hidden: [8]}\n", kToy);
  ASSERT_EQ(kdx({"submit", "cancel.yaml", "--executor", "slurm"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      "cancel", [](const nlohmann::json& rs) { return rs[0]["state"] == "RUNNING"; }, 60));
  auto c = kdx({"cancel", "-e", "cancel"});
  EXPECT_EQ(c.out, "cancelled 3 runs\n");
  EXPECT_TRUE(wait_until(
      "cancel",
      [](const nlohmann::json& rs) {
        for (auto& r : rs)
          if (r["state"] != "CANCELLED") return false;
        return true;
      },
      60));
  auto q = slurm({"squeue", "-h"});
  EXPECT_EQ(q.out, "");
}

TEST_F(Slurm, RequeueAndTimeoutResumeFromCheckpoints) {
  experiment(
      "resume",
      "{layers: 1, hidden: 32, heads: 2, ffn: 64, vocab_size: 2000, epochs: 400, batch_size: 8, "
      "max_train_docs: 40, max_test_docs: 2, resources: {cpus: 1, mem: 1G, time: '30:00'}}",
      "  include: [{arch: sru, hidden: 8, emb: 8, epochs: 1, max_test_docs: 2, loss: {kd_weight: "
      "0}}]\n");
  ASSERT_EQ(kdx({"submit", "resume.yaml", "--executor", "slurm"}).exit_code, 0);
  auto running_with_metrics = [&](const nlohmann::json& rs) {
    return rs[0]["state"] == "RUNNING" &&
           test::file_exists(dir_.file("results/runs/resume/" + rs[0]["id"].get<std::string>() +
                                       "/metrics.jsonl"));
  };
  ASSERT_TRUE(wait_until("resume", running_with_metrics, 90));
  std::string job = job_of("resume", "teacher");
  // 1. scontrol requeue: SIGTERM, checkpoint, back in the queue, resumed in the same attempt.
  ASSERT_EQ(slurm({"scontrol", "requeue", job}).exit_code, 0);
  std::string teacher = status("resume")[0]["id"];
  std::string log = dir_.file("results/runs/resume/" + teacher + "/logs/slurm-" + job + ".out");
  bool resumed = false;
  for (int i = 0; i < 120 && !resumed; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    // A requeued job waits ~2 minutes before it is eligible again: skip that hold-off.
    if (slurm({"squeue", "-h", "-j", job, "-o", "%r"}).out.find("BeginTime") != std::string::npos)
      slurm({"scontrol", "update", "JobId=" + job, "StartTime=now"});
    resumed = test::slurp(log).find("kdx-worker: resuming from") != std::string::npos;
  }
  ASSERT_TRUE(resumed) << test::slurp(log);
  // 2. Time limit. Slurm sends USR1 ahead of the limit (the job checkpoints and requeues
  //    itself) and TERM at the limit (TIMEOUT, the worker checkpointed); which one wins the
  //    race varies, and either way the run must resume and complete.
  ASSERT_EQ(slurm({"scontrol", "update", "JobId=" + job, "TimeLimit=0"}).exit_code, 0);
  bool handled = false;
  for (int i = 0; i < 150 && !handled; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (status("resume")[0]["state"] == "TIMEOUT") {
      auto again = kdx({"resubmit", "--failed", "-e", "resume", "--wait"});
      EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
      handled = true;
    } else if (test::slurp(log).find("requeueing") != std::string::npos &&
               slurm({"squeue", "-h", "-j", job, "-o", "%T"}).out.find("PENDING") !=
                   std::string::npos) {
      // Give the requeued job its time back and let it start now.
      slurm({"scontrol", "update", "JobId=" + job, "TimeLimit=30:00", "StartTime=now"});
      auto done = kdx({"submit", "resume.yaml", "--executor", "slurm", "--wait"});
      // After a job requeued itself Slurm may cancel its afterok dependents; their upstream
      // is COMPLETED now, so a resubmission needs no dependency.
      if (done.exit_code != 0) done = kdx({"resubmit", "--failed", "-e", "resume", "--wait"});
      EXPECT_EQ(done.exit_code, 0) << done.out << done.err;
      handled = true;
    }
  }
  ASSERT_TRUE(handled) << status("resume").dump() << test::slurp(log);
  for (auto& r : status("resume")) EXPECT_EQ(r["state"], "COMPLETED") << r.dump();
  // Every start after the first resumed from a checkpoint: count over all the teacher's logs.
  auto logs = test::run_command(
      {"sh", "-c",
       "cat " + dir_.file("results/runs/resume/" + teacher + "/logs/") + "slurm-*.out"});
  int resumes = 0;
  for (size_t p = 0; (p = logs.out.find("kdx-worker: resuming from", p)) != std::string::npos; ++p)
    ++resumes;
  EXPECT_GE(resumes, 2) << logs.out;
}

TEST_F(Slurm, TwoRanksOverTwoNodesThroughSrun) {
  experiment("ranks",
             "{layers: 1, hidden: 16, heads: 2, ffn: 32, vocab_size: 1500, epochs: 1, batch_size: "
             "8, max_train_docs: 12, "
             "max_test_docs: 2, ranks: 2, resources: {nodes: 2, cpus: 1, mem: 1G, time: '10:00'}}",
             "  include: [{arch: sru, hidden: 8, emb: 8, epochs: 1, max_test_docs: 2, loss: "
             "{kd_weight: 0}}]\n");
  auto r = kdx({"submit", "ranks.yaml", "--executor", "slurm", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string teacher = status("ranks")[0]["id"];
  std::string job = job_of("ranks", "teacher");
  auto log =
      test::slurp(dir_.file("results/runs/ranks/" + teacher + "/logs/slurm-" + job + ".out"));
  EXPECT_NE(log.find("rank 0/2 (gloo)"), std::string::npos) << log;
  std::string nodes;
  for (int i = 0; i < 20 && nodes.empty(); ++i) {  // the accounting record may lag a little
    nodes = slurm({"sacct", "-n", "-P", "-X", "-j", job, "-o", "NNodes"}).out;
    if (nodes.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(nodes, "2\n");
}

// The lines of a rendered batch script that decide tasks, CPUs and GPUs, and the launch line.
std::vector<std::string> gpu_lines(const std::string& script) {
  std::vector<std::string> out;
  std::istringstream in(script);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# ", 0) == 0) continue;  // the template's comments
    for (auto key : {"--gres", "--gpu", "ntasks", "cpus-per-task", "srun", TOY_WORKER_BIN})
      if (line.find(key) != std::string::npos) {
        out.push_back(line);
        break;
      }
  }
  return out;
}

// GPUs on the test cluster's fake GRES (2 per node, gres.conf File= lines): one task per GPU,
// each seeing only its own (CUDA_VISIBLE_DEVICES set by Slurm), a one-task job its one GPU,
// and the two-node launch still finds its rendezvous address.
TEST_F(Slurm, EachRankGetsItsOwnGpu) {
  experiment("gpus", "{hidden: 16, resources: {gpus_per_node: 1, cpus: 1, mem: 1G, time: '10:00'}}",
             "  grid: {hidden: [8]}\n"
             "  resources: {gpus_per_node: 2, cpus: 1, mem: 1G, time: '10:00'}\n",
             std::string("logits: {resources: {nodes: 2, gpus_per_node: 1, cpus: 1, mem: 1G, "
                         "time: '10:00'}}\n") +
                 kToy);
  auto r = kdx({"submit", "gpus.yaml", "--executor", "slurm", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string runs_dir = dir_.file("results/runs/gpus/");
  std::map<std::string, std::string> script_of;  // stage -> rendered script
  for (auto& e : std::filesystem::directory_iterator(runs_dir + "slurm")) {
    std::string name = e.path().filename().string();
    for (auto stage : {"teacher", "logits", "student"})
      if (name.find(std::string("kdx-gpus-") + stage + "-") == 0 &&
          e.path().extension() == ".sbatch")
        script_of[stage] = test::slurp(e.path().string());
  }
  ASSERT_EQ(script_of.size(), 3u);
  const std::string worker = "'" TOY_WORKER_BIN "' '--spec' \"$run_dir/run.json\" &";
  EXPECT_EQ(gpu_lines(script_of["teacher"]),
            (std::vector<std::string>{"#SBATCH --cpus-per-task=1", "#SBATCH --ntasks-per-node=1",
                                      "#SBATCH --gres=gpu:1", worker}));
  EXPECT_EQ(gpu_lines(script_of["student"]),
            (std::vector<std::string>{
                "#SBATCH --cpus-per-task=1", "#SBATCH --ntasks-per-node=2", "#SBATCH --gres=gpu:2",
                "srun --kill-on-bad-exit=1 --cpus-per-task=1 --gpus-per-task=1 " + worker}));
  EXPECT_EQ(gpu_lines(script_of["logits"]),
            (std::vector<std::string>{
                "#SBATCH --cpus-per-task=1", "#SBATCH --ntasks-per-node=1", "#SBATCH --gres=gpu:1",
                "srun --kill-on-bad-exit=1 --cpus-per-task=1 --gpus-per-task=1 " + worker}));

  // What each rank was given, as the toy worker recorded it (toy-env-<SLURM_PROCID>.json).
  std::map<std::string, std::vector<nlohmann::json>> envs;
  for (auto& run : status("gpus")) {
    EXPECT_EQ(run["state"], "COMPLETED") << run.dump();
    std::string stage = run["stage"];
    for (int rank = 0; rank < 4; ++rank) {
      std::string f =
          runs_dir + run["id"].get<std::string>() + "/toy-env-" + std::to_string(rank) + ".json";
      if (test::file_exists(f)) envs[stage].push_back(nlohmann::json::parse(test::slurp(f)));
    }
  }
  // One GPU, one task: the batch step itself sees the job's GPU.
  ASSERT_EQ(envs["teacher"].size(), 1u);
  EXPECT_EQ(envs["teacher"][0]["CUDA_VISIBLE_DEVICES"], "0") << envs["teacher"][0].dump();
  // Two GPUs: two ranks on one node, each bound to a different single GPU.
  ASSERT_EQ(envs["student"].size(), 2u);
  std::set<std::string> gpus;
  for (int rank = 0; rank < 2; ++rank) {
    auto& e = envs["student"][static_cast<size_t>(rank)];
    EXPECT_EQ(e["SLURM_PROCID"], std::to_string(rank)) << e.dump();
    EXPECT_EQ(e["SLURM_LOCALID"], std::to_string(rank)) << e.dump();
    EXPECT_EQ(e["SLURM_NTASKS"], "2") << e.dump();
    EXPECT_EQ(e["SLURM_CPUS_PER_TASK"], "1") << e.dump();
    ASSERT_TRUE(e["CUDA_VISIBLE_DEVICES"].is_string()) << e.dump();
    std::string g = e["CUDA_VISIBLE_DEVICES"];
    EXPECT_TRUE(g == "0" || g == "1") << e.dump();  // one GPU, not "0,1"
    gpus.insert(g);
  }
  EXPECT_EQ(gpus, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(envs["student"][0]["SLURMD_NODENAME"], envs["student"][1]["SLURMD_NODENAME"]);
  // One GPU per node over two nodes: local rank 0 and GPU 0 on each, the address of node 1.
  ASSERT_EQ(envs["logits"].size(), 2u);
  for (auto& e : envs["logits"]) {
    EXPECT_EQ(e["SLURM_LOCALID"], "0") << e.dump();
    EXPECT_EQ(e["CUDA_VISIBLE_DEVICES"], "0") << e.dump();
    EXPECT_EQ(e["KDX_MASTER_ADDR"], "127.0.0.1") << e.dump();
  }
  EXPECT_NE(envs["logits"][0]["SLURMD_NODENAME"], envs["logits"][1]["SLURMD_NODENAME"]);
}

TEST_F(Slurm, ValuesFromYamlNeverExecute) {
  std::string marker = dir_.file("pwned");
  experiment("inject", "{hidden: 16, resources: {partition: \"debug$(touch " + marker + ")\"}}",
             "  grid: {hidden: [8]}\n", kToy);
  auto bad = kdx({"submit", "inject.yaml", "--executor", "slurm"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("teacher.resources.partition: 'debug$(touch"), std::string::npos)
      << bad.err;
  // Environment values are data: exported single-quoted, never evaluated.
  experiment("inject", "{hidden: 16}", "  grid: {hidden: [8]}\n",
             std::string("worker: {command: ['" TOY_WORKER_BIN
                         "', '--spec', '{run_json}'], env: {X: \"$(touch ") +
                 marker + ")'; touch " + marker + "; '\"}}\n");
  auto r = kdx({"submit", "inject.yaml", "--executor", "slurm", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(test::file_exists(marker));
}

TEST_F(Slurm, StatusWorksWithSlurmdbdStopped) {
  auto pid = test::slurp(g_cluster_dir + "/run/slurmdbd.pid");
  ASSERT_FALSE(pid.empty());
  ::kill(std::stoi(pid), SIGTERM);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  experiment("nodbd", "{hidden: 16}", "  grid: {hidden: [8]}\n", kToy);
  auto r = kdx({"submit", "nodbd.yaml", "--executor", "slurm", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (auto& run : status("nodbd")) EXPECT_EQ(run["state"], "COMPLETED") << run.dump();
}

// Chaos: the cluster misbehaves under a running grid; nothing is lost, no state is wrong.

// Accounting (sacct) unavailable: kdx must not call any run FAILED for it. (slurmdbd is
// still stopped by the test above.)
TEST_F(Slurm, ChaosSacctUnavailableMakesNoRunFailed) {
  experiment("nosacct", "{hidden: 16}", "  grid: {hidden: [8, 16, 24]}\n",
             std::string("worker: {command: ['" TOY_WORKER_BIN
                         "', '--spec', '{run_json}'], env: {KDX_TOY_SLEEP_MS: '1500'}}\n"));
  if (test::file_exists(g_cluster_dir + "/run/slurmdbd.pid")) cluster({"stop-dbd"});
  ASSERT_EQ(kdx({"submit", "nosacct.yaml", "--executor", "slurm"}).exit_code, 0);
  bool done = false;
  for (int i = 0; i < 120 && !done; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto runs = status("nosacct");
    done = true;
    for (auto& r : runs) {
      EXPECT_NE(r["state"], "FAILED") << r.dump();
      done = done && r["state"] == "COMPLETED";
    }
  }
  EXPECT_TRUE(done) << status("nosacct").dump();
  auto up = cluster({"start-dbd"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  for (auto& r : status("nosacct")) EXPECT_EQ(r["state"], "COMPLETED") << r.dump();
}

// slurmctld restarted in the middle of a grid: the jobs, their dependencies and kdx's view
// of them all survive; every run completes once.
TEST_F(Slurm, ChaosSlurmctldRestartedMidGrid) {
  experiment("ctld", "{hidden: 16}",
             "  grid: {hidden: [8, 16, 24, 32], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n",
             std::string("worker: {command: ['" TOY_WORKER_BIN
                         "', '--spec', '{run_json}'], env: {KDX_TOY_SLEEP_MS: '2000'}}\n"));
  ASSERT_EQ(kdx({"submit", "ctld.yaml", "--executor", "slurm"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      "ctld", [](const nlohmann::json& rs) { return rs[0]["state"] == "RUNNING"; }, 60));
  auto restart = cluster({"restart-ctld"});
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  auto all_done = [](const nlohmann::json& rs) {
    for (auto& r : rs)
      if (r["state"] != "COMPLETED") return false;
    return true;
  };
  EXPECT_TRUE(wait_until("ctld", all_done, 180)) << status("ctld").dump();
  for (auto& r : status("ctld")) {
    EXPECT_EQ(r["state"], "COMPLETED") << r.dump();
    EXPECT_EQ(r["attempt"], 1) << r.dump();  // nothing was submitted twice
  }
}

// A node dies (its slurmd and every process of its jobs) while a real worker trains there:
// Slurm requeues the job on the other node, or kdx resubmits it; either way the run resumes
// from its checkpoint and completes.
TEST_F(Slurm, ChaosNodeFailureResumesFromTheCheckpoint) {
  experiment(
      "nodefail",
      "{layers: 1, hidden: 32, heads: 2, ffn: 64, vocab_size: 2000, epochs: 60, batch_size: 8, "
      "max_train_docs: 40, max_test_docs: 2, checkpoint_every: 5, "
      "resources: {cpus: 1, mem: 1G, time: '30:00'}}",
      "  include: [{arch: sru, hidden: 8, emb: 8, epochs: 1, max_test_docs: 2, loss: {kd_weight: "
      "0}}]\n");
  ASSERT_EQ(kdx({"submit", "nodefail.yaml", "--executor", "slurm"}).exit_code, 0);
  std::string teacher;
  auto checkpointed = [&](const nlohmann::json& rs) {
    teacher = rs[0]["id"];
    return rs[0]["state"] == "RUNNING" &&
           test::file_exists(
               dir_.file("results/runs/nodefail/" + teacher + "/checkpoint/state.json"));
  };
  ASSERT_TRUE(wait_until("nodefail", checkpointed, 120));
  std::string job = job_of("nodefail", "teacher");
  std::string node = slurm({"squeue", "-h", "-j", job, "-o", "%N"}).out;
  node = node.substr(0, node.find('\n'));
  ASSERT_TRUE(node == "node1" || node == "node2") << node;
  auto kill = cluster({"kill-node", node.substr(4)});
  ASSERT_EQ(kill.exit_code, 0) << kill.err;
  bool resubmitted = false, finished = false;
  for (int i = 0; i < 300 && !finished; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    // A requeued job waits ~2 minutes before it is eligible again: skip that hold-off.
    if (slurm({"squeue", "-h", "-j", job, "-o", "%r"}).out.find("BeginTime") != std::string::npos)
      slurm({"scontrol", "update", "JobId=" + job, "StartTime=now"});
    auto runs = status("nodefail");
    if (!resubmitted && (runs[0]["state"] == "FAILED" || runs[0]["state"] == "PREEMPTED")) {
      resubmitted = true;
      EXPECT_EQ(kdx({"resubmit", "--failed", "-e", "nodefail"}).exit_code, 0);
    }
    finished = true;
    for (auto& r : runs) finished = finished && r["state"] == "COMPLETED";
    // Dependents cancelled as unsatisfiable by a failed upstream come back with it.
    bool cancelled = false;
    for (auto& r : runs) cancelled = cancelled || r["state"] == "CANCELLED";
    if (cancelled && runs[0]["state"] == "COMPLETED")
      kdx({"resubmit", "--failed", "-e", "nodefail"});
  }
  auto restore = cluster({"start-node", node.substr(4)});
  EXPECT_EQ(restore.exit_code, 0) << restore.err;
  ASSERT_TRUE(finished) << status("nodefail").dump();
  auto logs = test::run_command(
      {"sh", "-c",
       "cat " + dir_.file("results/runs/nodefail/" + teacher + "/logs/") + "slurm-*.out"});
  EXPECT_NE(logs.out.find("kdx-worker: resuming from"), std::string::npos) << logs.out;
}

}  // namespace
}  // namespace kdx

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new kdx::ClusterEnvironment);
  return RUN_ALL_TESTS();
}
