// Data-parallel training through real processes and real c10d/Gloo on localhost.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/test_support.h"
#include "workers/distributed/launcher.h"
#include "workers/distributed/process_group.h"
#include "workers/models/safetensors.h"

namespace kdx::distributed {
namespace {

TEST(RankInfo, FirstHostOfSlurmNodeLists) {
  EXPECT_EQ(first_host("node[01-03],gpu7"), "node01");
  EXPECT_EQ(first_host("gpu7,node[1-2]"), "gpu7");
  EXPECT_EQ(first_host("cn[5,7-9]"), "cn5");
  EXPECT_EQ(first_host("localhost"), "localhost");
}

TEST(RankInfo, SlurmAndTorchrunVariables) {
  ::setenv("SLURM_NTASKS", "4", 1);
  ::setenv("SLURM_PROCID", "2", 1);
  ::setenv("SLURM_LOCALID", "0", 1);
  ::setenv("SLURM_JOB_NODELIST", "node[3-4]", 1);
  ::setenv("SLURM_JOB_ID", "12345", 1);
  auto s = rank_info_from_env();
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 2);
  EXPECT_EQ(s.world, 4);
  EXPECT_EQ(s.master_addr, "node3");
  EXPECT_EQ(s.master_port, 20000 + 12345 % 20000);
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("MASTER_ADDR", "10.1.1.1", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  auto t = rank_info_from_env();  // torchrun-style variables win
  EXPECT_EQ(t.source, "torchrun");
  EXPECT_EQ(t.rank, 1);
  EXPECT_EQ(t.master_port, 29511);
  ::setenv("RANK", "5", 1);
  EXPECT_THROW(rank_info_from_env(), std::exception);
  for (auto v : {"SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_JOB_NODELIST",
                 "SLURM_JOB_ID", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"})
    ::unsetenv(v);
}

class Ddp : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = test::shared_data_dir();
    ASSERT_FALSE(data_.empty());
  }
  std::string run(const std::string& name, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json p = {{"arch", "bert"},
                        {"layers", 1},
                        {"hidden", 32},
                        {"heads", 2},
                        {"ffn", 64},
                        {"vocab_size", 2000},
                        {"lowercase", false},
                        {"dropout", 0.0},
                        {"seed", 3},
                        {"window", 64},
                        {"tagging", "per_type_bio"},
                        {"max_train_docs", 40},
                        {"max_test_docs", 3},
                        {"epochs", 2},
                        {"batch_size", 8},
                        {"lr", 0.001},
                        {"weight_decay", 0.01},
                        {"warmup_steps", 2},
                        {"grad_clip", 1.0},
                        {"patience", 0},
                        {"checkpoint_every", 1000},
                        {"threads", 1},
                        {"ranks", 1}};
    p.update(extra);
    return dir_.write(name + "/run.json",
                      test::runne_run_json(data_, name, "teacher", p, dir_.file(name)).dump(2));
  }
  test::CommandResult worker(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), KDX_WORKER_BIN);
    env.push_back("OMP_NUM_THREADS=1");
    return test::run_command(args, "", env);
  }
  std::map<std::string, std::vector<float>> weights(const std::string& name) {
    std::map<std::string, std::vector<float>> out;
    for (auto& [k, t] : models::read_safetensors(dir_.file(name + "/model.safetensors")))
      out[k] = models::to_float32(t, k);
    return out;
  }
  std::vector<double> losses(const std::string& name) {
    std::vector<double> out;
    std::istringstream in(test::slurp(dir_.file(name + "/metrics.jsonl")));
    for (std::string line; std::getline(in, line);)
      out.push_back(nlohmann::json::parse(line)["train_loss"].get<double>());
    return out;
  }
  // Starts kdx-worker in the background; stderr to NAME.err.
  pid_t start(const std::vector<std::string>& args, const std::string& name) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open(dir_.file(name + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      ::setenv("OMP_NUM_THREADS", "1", 1);
      std::vector<char*> a = {const_cast<char*>(KDX_WORKER_BIN)};
      for (auto& s : args) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      ::execv(KDX_WORKER_BIN, a.data());
      ::_exit(127);
    }
    return pid;
  }
  bool wait_for_file(const std::string& path, int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (test::file_exists(path)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string data_;
  test::TempDir dir_;
};

TEST_F(Ddp, TwoRanksMatchOneRankOnTheSameGlobalBatch) {
  auto one = worker({"--spec", run("one"), "--no-latency"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = worker({"--spec", run("two"), "--no-latency", "--nproc", "2"});
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("rank 0/2 (gloo)"), std::string::npos) << two.err;
  auto l1 = losses("one"), l2 = losses("two");
  ASSERT_EQ(l1.size(), 2u);
  ASSERT_EQ(l2.size(), 2u);
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-6 * std::abs(l1[i]));
  auto w1 = weights("one"), w2 = weights("two");
  float worst = 0;
  for (auto& [k, v] : w1)
    for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::abs(v[i] - w2.at(k)[i]));
  EXPECT_LT(worst, 1e-5);
  // Only rank 0 wrote the results.
  EXPECT_EQ(nlohmann::json::parse(test::slurp(dir_.file("two/result.json")))["status"], "ok");
}

TEST_F(Ddp, RendezvousTimesOutWhenARankNeverStarts) {
  auto spec = run("alone");
  auto port = std::to_string(free_port());
  auto t0 = std::chrono::steady_clock::now();
  auto r =
      worker({"--spec", spec, "--no-latency"}, {"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                                                "MASTER_PORT=" + port, "KDX_RENDEZVOUS_TIMEOUT=3"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(
      r.err.find(
          "kdx-worker: error: rank 0 could not rendezvous with 1 other rank(s) at 127.0.0.1:" +
          port + " within 3 s (KDX_RENDEZVOUS_TIMEOUT)"),
      std::string::npos)
      << r.err;
  EXPECT_LT(took, 30);
  auto client =
      worker({"--spec", spec, "--no-latency"}, {"RANK=1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                                                "MASTER_PORT=" + port, "KDX_RENDEZVOUS_TIMEOUT=3"});
  EXPECT_EQ(client.exit_code, 1);
  EXPECT_NE(client.err.find("rank 1 could not rendezvous"), std::string::npos) << client.err;
}

TEST_F(Ddp, AKilledRankEndsTheOthersWithAnError) {
  pid_t launcher =
      start({"--spec", run("killed", {{"epochs", 200}}), "--no-latency", "--nproc", "2"}, "killed");
  ASSERT_TRUE(wait_for_file(dir_.file("killed/metrics.jsonl"), 120));
  // The launcher's children are the ranks: kill rank 1 hard.
  auto ps = test::run_command({"pgrep", "-P", std::to_string(launcher)});
  std::vector<pid_t> ranks;
  std::istringstream in(ps.out);
  for (pid_t p; in >> p;) ranks.push_back(p);
  ASSERT_EQ(ranks.size(), 2u) << ps.out;
  ::kill(std::max(ranks[0], ranks[1]), SIGKILL);
  auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  ::waitpid(launcher, &status, 0);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 60) << "the surviving rank hung";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  auto err = test::slurp(dir_.file("killed.err"));
  EXPECT_NE(err.find(" exited with 137; stopping the others"), std::string::npos) << err;
}

TEST_F(Ddp, CheckpointMovesBetweenWorldSizes) {
  for (auto [first, second] : {std::pair{"2", "1"}, {"1", "2"}}) {
    std::string name = std::string("move") + first;
    std::string spec = run(name, {{"epochs", 200}});
    pid_t pid = start({"--spec", spec, "--no-latency", "--nproc", first}, name);
    ASSERT_TRUE(wait_for_file(dir_.file(name + "/metrics.jsonl"), 120));
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << test::slurp(dir_.file(name + ".err"));
    if (std::string(first) == "2") {
      // A stop every rank was sent is no rank's failure: logged as such, not as an error.
      auto err = test::slurp(dir_.file(name + ".err"));
      EXPECT_NE(err.find("stopped (exit 143) on signal 15, passed on by the launcher"),
                std::string::npos)
          << err;
      EXPECT_EQ(err.find("stopping the others"), std::string::npos) << err;
      EXPECT_EQ(err.find(" error "), std::string::npos) << err;
    }
    auto state = nlohmann::json::parse(test::slurp(dir_.file(name + "/checkpoint/state.json")));
    int done = state["epoch"].get<int>();
    ASSERT_GE(done, 1);
    spec = run(name, {{"epochs", done + 1}});
    auto r = worker({"--spec", spec, "--no-latency", "--nproc", second});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("resuming from " + dir_.file(name + "/checkpoint")), std::string::npos)
        << r.err;
    EXPECT_EQ(
        nlohmann::json::parse(test::slurp(dir_.file(name + "/result.json")))["metrics"]["epochs"],
        done + 1);
  }
}

}  // namespace
}  // namespace kdx::distributed
