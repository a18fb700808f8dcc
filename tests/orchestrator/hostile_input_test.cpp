// Regression tests for what an outside probe found (issue 12): each reproduces one finding
// with the probe's own input and asserts the clear error or the correct behaviour.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.h"
#include "orchestrator/registry.h"
#include "orchestrator/result_schema.h"
#include "orchestrator/spec.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

const char* kHead =
    "experiment: h\n"
    "datasets:\n"
    "  - {name: runne, format: runne, train: runne/train.jsonl, test: runne/test.jsonl}\n";

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("data/runne/train.jsonl", "{}\n");
    dir_.write("data/runne/test.jsonl", "{}\n");
    opt_.data_dir = dir_.file("data");
  }
  std::string error_of(const std::string& text) {
    try {
      parse_spec_text(text, "h.yaml", opt_);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::string first_line(const std::string& text) {
    return error_of(text).substr(0, error_of(text).find('\n'));
  }
  test::CommandResult kdx(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), KDX_BIN);
    env.push_back("KDX_DATA_DIR=" + dir_.file("data"));
    return test::run_command(args, dir_.path(), env);
  }
  test::TempDir dir_;
  SpecOptions opt_;
};

// Values that crashed the worker (SIGFPE), trained nothing and "completed", or wrapped.
TEST_F(Hostile, ParametersOutOfRangeAreRefusedWhereTheyAreWritten) {
  struct Case {
    std::string yaml, message;
  };
  std::vector<Case> cases = {
      {"teacher: {heads: 0}\nstudents: {}\n",
       "h.yaml:4:18: teacher.heads: must be between 1 and 256, got 0"},
      {"teacher: {batch_size: 0}\nstudents: {}\n",
       "h.yaml:4:23: teacher.batch_size: must be between 1 and 65536, got 0"},
      {"teacher: {}\nstudents: {fixed: {epochs: 1e300}}\n",
       "h.yaml:5:28: students.fixed.epochs: must be between 1 and 100000, got 1e+300"},
      {"teacher: {}\nstudents: {fixed: {batch_size: -4}}\n",
       "h.yaml:5:32: students.fixed.batch_size: must be between 1 and 65536, got -4"},
      {"teacher: {}\nstudents: {grid: {hidden: [-32]}}\n",
       "h.yaml:5:28: students.grid.hidden[0]: must be between 1 and 16384, got -32"},
      {"teacher: {}\nstudents: {fixed: {dropout: 2.0}}\n",
       "h.yaml:5:29: students.fixed.dropout: must be between 0 and 0.99, got 2.0"},
      {"teacher: {lr: -1}\nstudents: {}\n",
       "h.yaml:4:15: teacher.lr: must be between 1e-12 and 10, got -1"},
      {"teacher: {max_train_docs: -5}\nstudents: {}\n",
       "h.yaml:4:27: teacher.max_train_docs: must be between 0 and 1000000000, got -5"},
      {"teacher: {vocab_size: 0}\nstudents: {}\n",
       "h.yaml:4:23: teacher.vocab_size: must be between 16 and 10000000, got 0"},
      {"teacher: {}\nstudents: {fixed: {emb: 0}}\n",
       "h.yaml:5:25: students.fixed.emb: must be between 1 and 16384, got 0"},
      {"teacher: {window: 10000000}\nstudents: {}\n",
       "h.yaml:4:19: teacher.window: must be between 8 and 4096, got 10000000"},
      {"teacher: {resources: {cpus: 4294967297}}\nstudents: {}\n",
       "h.yaml:4:29: teacher.resources.cpus: must be between 1 and 4096, got 4294967297"},
      {"teacher: {resources: {nodes: 2147483648}}\nstudents: {}\n",
       "h.yaml:4:30: teacher.resources.nodes: must be between 1 and 100000, got 2147483648"},
      {"teacher: {}\nstudents: {fixed: {lr: .inf}}\n",
       "h.yaml:5:24: students.fixed.lr: must be a finite number, got .inf"},
      {"teacher: {}\nstudents: {random: {samples: 2, seed: 1, params: {dropout: {uniform: [0.0, "
       "2.0]}}}}\n",
       "h.yaml:5:70: students.random.params.dropout.uniform: bounds must lie within the "
       "parameter's range 0 .. 0.99"},
  };
  for (auto& c : cases) EXPECT_EQ(first_line(std::string(kHead) + c.yaml), c.message) << c.yaml;
}

// Four lists of 40 values multiply into 2.56 million runs: refused before anything is built.
TEST_F(Hostile, OversizedGridIsRefusedBeforeExpansion) {
  std::string list = "[";
  for (int i = 1; i <= 40; ++i) list += (i > 1 ? ", " : "") + std::to_string(i);
  list += "]";
  dir_.write("g.yaml", std::string(kHead) + "teacher: {}\nstudents: {grid: {hidden: " + list +
                           ", emb: " + list + ", seed: " + list + ", layers: " + list + "}}\n");
  auto r = kdx({"submit", "g.yaml", "--dry-run", "--registry", dir_.file("r.sqlite")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err,
            "kdx: error: g.yaml: students: the grid has 2560000 points; kdx plans at most "
            "1000000 runs per experiment (split it into several experiments)\n");
}

// Found by fuzz_spec_yaml: a byte that is not UTF-8 reached the run id's JSON and aborted
// kdx with a JSON library exception; it is an error at its place.
TEST_F(Hostile, InvalidUtf8IsAnErrorAtItsPlace) {
  // "\xD2" "m": the string break keeps 'm' out of the hex escape.
  std::string yaml = std::string(kHead) +
                     "teacher: {layers: 1}\nstudents:\n  fixed: {arch: ls\xD2"
                     "m}\n";
  EXPECT_EQ(error_of(yaml),
            "h.yaml:6:19: not valid UTF-8 (byte 0xD2)\n    fixed: {arch: ls\xD2"
            "m}\n"
            "                    ^");
  EXPECT_EQ(first_line("\xFF"), "h.yaml:1:1: not valid UTF-8 (byte 0xFF)");
}

// A result.json a worker must never write, and one a careless user may: the attempt fails
// with the reason, and every command keeps working.
TEST_F(Hostile, BadResultJsonFailsTheRunAndTheRegistryKeepsWorking) {
  EXPECT_EQ(check_result({{"status", 5}}, "r"), "status: must be a string (\"ok\")");
  EXPECT_EQ(check_result({{"status", nullptr}}, "r"), "status: must be a string (\"ok\")");
  EXPECT_EQ(check_result({{"status", "ok"}, {"metrics", {{"f1", "x"}}}}, "r"),
            "metrics.f1: must be a number, got \"x\"");
  EXPECT_EQ(check_result({{"status", "ok"}, {"metrics", {{"params", -0.0001}}}}, "r"),
            "metrics.params: -0.0001 is out of range");
  EXPECT_EQ(check_result({{"status", "ok"}, {"run", "other"}}, "r"),
            "run: \"other\" is not this run (r)");
  EXPECT_EQ(check_result({{"status", "ok"}, {"metrics", {{"f1", 0.5}, {"arch", "lstm"}}}}, "r"),
            "");
  // End to end: a worker that writes {"status": 5} (a shell worker, like a user's own).
  dir_.write("bad_worker.sh",
             "#!/bin/sh\nrun_dir=$(dirname \"$2\")\necho '{\"status\": 5, \"metrics\": {\"f1\": "
             "\"x\"}}' > \"$run_dir/result.json\"\n");
  ::chmod(dir_.file("bad_worker.sh").c_str(), 0755);
  dir_.write("exp.yaml", std::string(kHead) +
                             "teacher: {}\nstudents: {grid: {hidden: [8]}}\n"
                             "worker: {command: ['" +
                             dir_.file("bad_worker.sh") + "', '--spec', '{run_json}']}\n");
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  auto s = kdx({"status", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto rows = nlohmann::json::parse(s.out);
  EXPECT_EQ(rows[0]["state"], "FAILED");
  EXPECT_NE(
      rows[0]["reason"].get<std::string>().find("/result.json: status: must be a string (\"ok\")"),
      std::string::npos)
      << rows[0];
  for (auto cmd : std::vector<std::vector<std::string>>{
           {"show", rows[0]["id"]}, {"cancel", "-e", "h"}, {"report", "-e", "h"}})
    EXPECT_EQ(kdx(cmd).exit_code, 0) << cmd[0];
  auto resub = kdx({"resubmit", "--failed", "-e", "h"});
  EXPECT_EQ(resub.exit_code, 0) << resub.err;
}

// Deep nesting was a stack overflow in every JSON reader; now a clear error.
TEST_F(Hostile, DeeplyNestedJsonIsAnErrorNotACrash) {
  std::string deep(100000, '[');
  dir_.write("pred.jsonl", "{\"id\": 0, \"ners\": " + deep + "}\n");
  dir_.write("gold.jsonl", "{\"id\": 0, \"sentences\": \"a b\", \"ners\": []}\n");
  dir_.write("ners.txt", "PER\n");
  auto r = kdx({"eval", "--format", "runne", "--gold", "gold.jsonl", "--pred", "pred.jsonl"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "kdx: error: pred.jsonl:1: not a JSON object\n");
  EXPECT_EQ(check_result(nlohmann::json::value_t::discarded, "r"), "not a JSON object");
}

// The shared task's scorer counts an impossible predicted span as a false positive; so
// does kdx (with a warning), instead of refusing the file.
TEST_F(Hostile, ImpossiblePredictedSpansAreScoredAsFalsePositives) {
  dir_.write("gold.jsonl",
             "{\"id\": 0, \"sentences\": \"Anna met Boris.\", \"ners\": [[0, 3, \"PER\"], [9, 13, "
             "\"PER\"]]}\n");
  dir_.write("ners.txt", "PER\n");
  dir_.write("pred.jsonl",
             "{\"id\": 0, \"ners\": [[0, 3, \"PER\"], [5, 4, \"PER\"], [-3, 2, \"PER\"], "
             "[4294967296, 4294967300, \"PER\"]]}\n");
  auto r =
      kdx({"eval", "--format", "runne", "--gold", "gold.jsonl", "--pred", "pred.jsonl", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  // 1 true positive of 4 predictions, 1 of 2 gold entities.
  EXPECT_DOUBLE_EQ(j["mention"]["precision"].get<double>(), 0.25) << r.out;
  EXPECT_DOUBLE_EQ(j["mention"]["recall"].get<double>(), 0.5) << r.out;
  EXPECT_NE(
      r.err.find("pred.jsonl:1: entity PER ends before it starts; scored as a false positive"),
      std::string::npos)
      << r.err;
}

// Two kdx processes opening one new registry at once both create nothing twice.
TEST_F(Hostile, ConcurrentFirstOpensOfARegistry) {
  for (int round = 0; round < 40; ++round) {
    std::string reg = dir_.file("r" + std::to_string(round) + ".sqlite");
    std::vector<pid_t> kids;
    for (int k = 0; k < 2; ++k) {
      pid_t pid = ::fork();
      if (pid == 0) {
        try {
          Registry r(reg);
          ::_exit(r.schema_version() == Registry::kSchemaVersion ? 0 : 1);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "round %d: %s\n", round, e.what());
          ::_exit(2);
        }
      }
      kids.push_back(pid);
    }
    for (pid_t p : kids) {
      int status = 0;
      ::waitpid(p, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
    }
  }
}

// A run directory that is a symbolic link is refused: kdx writes nowhere through it.
TEST_F(Hostile, SymlinkedRunDirectoryIsRefused) {
  dir_.write("exp.yaml", std::string(kHead) +
                             "teacher: {}\nstudents: {grid: {hidden: [8]}}\n"
                             "worker: {command: ['" TOY_WORKER_BIN "', '--spec', '{run_json}']}\n");
  auto plan = nlohmann::json::parse(kdx({"submit", "exp.yaml", "--dry-run", "--json"}).out);
  std::string teacher_dir = plan["runs"][0]["run_dir"];
  ::mkdir(dir_.file("results").c_str(), 0755);
  ::mkdir(dir_.file("results/runs").c_str(), 0755);
  ::mkdir(dir_.file("results/runs/h").c_str(), 0755);
  ::mkdir(dir_.file("elsewhere").c_str(), 0755);
  dir_.write("elsewhere/result.json", "{\"keep\": true}");
  ASSERT_EQ(::symlink(dir_.file("elsewhere").c_str(), teacher_dir.c_str()), 0);
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(test::slurp(dir_.file("elsewhere/result.json")), "{\"keep\": true}");
  EXPECT_FALSE(test::file_exists(dir_.file("elsewhere/run.json")));
  auto rows = nlohmann::json::parse(kdx({"status", "--json"}).out);
  EXPECT_EQ(rows[0]["state"], "FAILED");
  EXPECT_NE(rows[0]["reason"].get<std::string>().find("is a symbolic link"), std::string::npos)
      << rows[0];
}

// `kdx submit --wait` killed with -9: its worker finishes and is recorded, and the next
// submit or resubmit says the other runs lost their scheduler and runs them.
TEST_F(Hostile, RunsLeftPendingByAKilledSchedulerAreRunByTheNextCommand) {
  dir_.write("exp.yaml", std::string(kHead) +
                             "teacher: {}\nstudents: {grid: {hidden: [8, 16, 24]}}\n"
                             "worker: {command: ['" TOY_WORKER_BIN
                             "', '--spec', '{run_json}'],\n"
                             "         env: {KDX_TOY_SLEEP_MS: '800'}}\n");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::chdir(dir_.path().c_str());
    ::setenv("KDX_DATA_DIR", dir_.file("data").c_str(), 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(KDX_BIN, KDX_BIN, "submit", "exp.yaml", "--wait", "--jobs", "1", (char*)nullptr);
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the teacher is running
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  auto r = kdx({"resubmit", "--failed", "-e", "h", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("left without a scheduler (it was stopped or killed); scheduling them now"),
            std::string::npos)
      << r.out;
  for (auto& row : nlohmann::json::parse(kdx({"status", "--json"}).out))
    EXPECT_EQ(row["state"], "COMPLETED") << row;
}

}  // namespace
}  // namespace kdx
