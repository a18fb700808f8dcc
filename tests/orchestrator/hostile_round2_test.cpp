// Regression tests for the second hostile-input probe (issue 22): each case is the probe's
// own input, and each asserts the clear error (word for word where the message is the
// behaviour) or the documented behaviour that replaced a silent default.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_io.h"
#include "orchestrator/result_schema.h"
#include "orchestrator/spec.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

const char* kHead =
    "experiment: h\n"
    "datasets:\n"
    "  - {name: runne, format: runne, train: runne/train.jsonl, test: runne/test.jsonl}\n";

class Round2 : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("data/runne/train.jsonl", "{}\n");
    dir_.write("data/runne/test.jsonl", "{}\n");
  }
  test::CommandResult kdx(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), KDX_BIN);
    env.push_back("KDX_DATA_DIR=" + dir_.file("data"));
    return test::run_command(args, dir_.path(), env);
  }
  // The first line of `kdx submit FILE --dry-run`'s error.
  std::string plan_error(const std::string& yaml) {
    dir_.write("exp.yaml", yaml);
    auto r = kdx({"submit", "exp.yaml", "--dry-run"});
    EXPECT_EQ(r.exit_code, 2) << r.out;
    return r.err.substr(0, r.err.find('\n'));
  }
  // An experiment whose worker is a shell script that writes `result` as its result.json
  // (a user's own worker, or a broken one).
  void shell_worker_experiment(const std::string& script_body, const std::string& grid = "[8]") {
    dir_.write("worker.sh", "#!/bin/sh\nrun_dir=$(dirname \"$2\")\n" + script_body);
    ::chmod(dir_.file("worker.sh").c_str(), 0755);
    dir_.write("exp.yaml", std::string(kHead) + "teacher: {}\nstudents: {grid: {hidden: " + grid +
                               "}}\nworker: {command: ['" + dir_.file("worker.sh") +
                               "', '--spec', '{run_json}']}\n");
  }
  void toy_experiment(const std::string& grid = "[8, 16]") {
    dir_.write("exp.yaml", std::string(kHead) + "teacher: {}\nstudents: {grid: {hidden: " + grid +
                               "}}\nworker: {command: ['" TOY_WORKER_BIN
                               "', '--spec', '{run_json}']}\n");
  }
  nlohmann::json status_rows() {
    auto s = kdx({"status", "--json"});
    EXPECT_EQ(s.exit_code, 0) << s.err;
    return nlohmann::json::parse(s.out);
  }
  test::TempDir dir_;
};

TEST_F(Round2, TimeLimitsThatWrappedAreRefused) {
  auto with_time = [&](const std::string& t) {
    return plan_error(std::string(kHead) + "teacher: {resources: {time: " + t +
                      "}}\nstudents: {grid: {hidden: [8]}}\n");
  };
  EXPECT_EQ(with_time("\"307445734561825860:17\""),
            "kdx: error: exp.yaml:4:29: teacher.resources.time: must be between 0:00:01 and "
            "365-00:00:00, got '307445734561825860:17' (too large)");
  EXPECT_EQ(with_time("4294967297"),
            "kdx: error: exp.yaml:4:29: teacher.resources.time: must be between 0:00:01 and "
            "365-00:00:00, got '4294967297'");
  EXPECT_EQ(with_time("\"99999999999999-00:00:00\""),
            "kdx: error: exp.yaml:4:29: teacher.resources.time: must be between 0:00:01 and "
            "365-00:00:00, got '99999999999999-00:00:00' (too large)");
}

TEST_F(Round2, MemorySizesOutsideWhatANodeHasAreRefused) {
  for (std::string m : {"1K", "0", "0G"})
    EXPECT_EQ(plan_error(std::string(kHead) + "teacher: {resources: {mem: " + m +
                         "}}\nstudents: {grid: {hidden: [8]}}\n"),
              "kdx: error: exp.yaml:4:28: teacher.resources.mem: must be between 64M and 64T, "
              "got '" +
                  m + "'");
  EXPECT_EQ(plan_error(std::string(kHead) +
                       "teacher: {}\nstudents: {grid: {hidden: [8]}, resources: {mem: "
                       "9223372036854775807}}\n"),
            "kdx: error: exp.yaml:5:50: students.resources.mem: must be between 64M and 64T, got "
            "'9223372036854775807' (too large)");
}

TEST_F(Round2, ASecondYamlDocumentIsAnError) {
  EXPECT_EQ(plan_error(std::string(kHead) +
                       "teacher: {}\nstudents: {grid: {hidden: [8]}}\n---\nstudents: {grid: "
                       "{hidden: [16]}}\n"),
            "kdx: error: exp.yaml:7:1: a second YAML document: an experiment file holds one "
            "(remove the '---' above it, or put it in a file of its own)");
  // A trailing '---' opens an empty document: nothing is lost, so it plans.
  dir_.write("exp.yaml",
             std::string(kHead) + "teacher: {}\nstudents: {grid: {hidden: [8]}}\n---\n");
  EXPECT_EQ(kdx({"submit", "exp.yaml", "--dry-run"}).exit_code, 0);
}

TEST_F(Round2, AZeroObjectiveIsRefused) {
  EXPECT_EQ(plan_error(std::string(kHead) +
                       "teacher: {}\nstudents: {grid: {loss: [{ce_weight: 0, kd_weight: 0}]}}\n"),
            "kdx: error: exp.yaml: students (student): loss: ce_weight, dice_weight and kd_weight "
            "are all 0 "
            "({\"ce_weight\":0,\"kd_loss\":\"kl\",\"kd_weight\":0,\"temperature\":1}): the run "
            "would learn nothing; give one of them a weight");
}

TEST_F(Round2, NanAndInfAreNamedAsSuch) {
  EXPECT_EQ(
      plan_error(std::string(kHead) + "teacher: {lr: .nan}\nstudents: {grid: {hidden: [8]}}\n"),
      "kdx: error: exp.yaml:4:15: teacher.lr: must be a finite number, got .nan");
  EXPECT_EQ(
      plan_error(std::string(kHead) + "teacher: {lr: -.inf}\nstudents: {grid: {hidden: [8]}}\n"),
      "kdx: error: exp.yaml:4:15: teacher.lr: must be a finite number, got -.inf");
  EXPECT_EQ(
      plan_error(std::string(kHead) + "teacher: {lr: 1e999}\nstudents: {grid: {hidden: [8]}}\n"),
      "kdx: error: exp.yaml:4:15: teacher.lr: must be a finite number, got 1e999");
}

TEST_F(Round2, CountsOnTheCommandLineSayTheirRange) {
  toy_experiment();
  auto r = kdx({"submit", "exp.yaml", "--jobs", "0"});
  EXPECT_EQ(r.exit_code, 105) << r.err;  // CLI11's code for a validation error
  EXPECT_NE(r.err.find("--jobs: must be between 1 and 100000, got 0"), std::string::npos) << r.err;
  r = kdx({"status", "--watch", "--interval", "-1"});
  EXPECT_NE(r.err.find("--interval: must be a number of seconds between 0.1 and 86400, got '-1'"),
            std::string::npos)
      << r.err;
}

// A FIFO as the experiment file blocked even --dry-run; /dev/zero read until bad_alloc.
TEST_F(Round2, ExperimentAndDataFilesMustBeRegularFiles) {
  ASSERT_EQ(::mkfifo(dir_.file("fifo.yaml").c_str(), 0644), 0);
  auto r = kdx({"submit", "fifo.yaml", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kdx: error: fifo.yaml: not a regular file (a FIFO)\n");
  r = kdx({"submit", "/dev/zero", "--dry-run"});
  EXPECT_EQ(r.err, "kdx: error: /dev/zero: not a regular file (a character device)\n");
  EXPECT_EQ(plan_error("experiment: h\ndatasets:\n  - {name: runne, format: runne, train: "
                       "/dev/zero, test: runne/test.jsonl}\nteacher: {}\nstudents: {grid: "
                       "{hidden: [8]}}\n"),
            "kdx: error: exp.yaml:3:41: datasets[0].train: /dev/zero: not a regular file (a "
            "character device)");
  // The cap and its variable, in one message; the variable lets a large corpus through.
  dir_.write("data/runne/train.jsonl", std::string(5000, ' ') + "{}\n");
  toy_experiment();
  r = kdx({"submit", "exp.yaml", "--dry-run"}, {"KDX_MAX_DATA_SIZE=4K"});
  EXPECT_NE(r.err.find("datasets[0].train: " + dir_.file("data/runne/train.jsonl") +
                       ": 4.9 KiB is more than the 4 KiB limit for data files (set "
                       "KDX_MAX_DATA_SIZE to raise it)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(kdx({"submit", "exp.yaml", "--dry-run"}, {"KDX_MAX_DATA_SIZE=1M"}).exit_code, 0);
}

TEST_F(Round2, ResultsThatAreNotResultsFailTheirRun) {
  EXPECT_EQ(check_result({{"status", "ok"}}, "r"),
            "metrics: missing (a finished run reports its metrics)");
  EXPECT_EQ(check_result({{"status", "ok"}, {"metrics", nlohmann::json::object()}}, "r"),
            "metrics: empty (a finished run reports its metrics)");
  EXPECT_EQ(
      check_result({{"status", "ok"}, {"stage", "student"}, {"metrics", {{"params", 5}}}}, "r"),
      "metrics.f1: missing (a student run reports its test F1)");
  EXPECT_EQ(check_result({{"status", "ok"}, {"metrics", {{"note", std::string(2000, 'x')}}}}, "r"),
            "metrics.note: a string of 2000 bytes, more than 1024");
  std::string why;
  EXPECT_TRUE(parse_json("{\"f1\":0.9,\"f1\":0.1}", &why).is_discarded());
  EXPECT_EQ(why, "duplicate key \"f1\"");
  EXPECT_FALSE(parse_json("{\"a\":{\"f1\":1},\"b\":{\"f1\":2}}").is_discarded());

  // End to end: each bad result.json makes its run FAILED with the reason.
  struct Case {
    std::string write, reason;
  };
  std::vector<Case> cases = {
      {"printf '{\"status\":\"ok\"}' > \"$run_dir/result.json\"\n",
       "/result.json: metrics: missing (a finished run reports its metrics)"},
      {"printf '{\"status\":\"ok\",\"metrics\":{\"f1\":0.9,\"f1\":0.1}}' > "
       "\"$run_dir/result.json\"\n",
       "/result.json: duplicate key \"f1\""},
      {"head -c 3000000 /dev/zero | tr '\\\\0' x > \"$run_dir/big\"\n"
       "{ printf '{\"status\":\"ok\",\"metrics\":{\"f1\":0.5,\"x\":\"'; cat \"$run_dir/big\"; "
       "printf '\"}}'; } > \"$run_dir/result.json\"\n",
       "/result.json: 2.9 MiB is more than the 1 MiB a result.json may hold"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.reason);
    ::system(("rm -rf " + dir_.file("results")).c_str());
    shell_worker_experiment(c.write);
    auto r = kdx({"submit", "exp.yaml", "--wait"});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    auto rows = status_rows();
    EXPECT_EQ(rows[0]["state"], "FAILED");
    EXPECT_NE(rows[0]["reason"].get<std::string>().find(c.reason), std::string::npos) << rows[0];
    EXPECT_EQ(kdx({"report"}).exit_code, 0);
  }
}

// A FIFO as result.json hung submit --wait, then status, show and cancel.
TEST_F(Round2, AFifoAsResultJsonHangsNothing) {
  shell_worker_experiment("mkfifo \"$run_dir/result.json\"\n");
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto rows = status_rows();
  EXPECT_EQ(rows[0]["state"], "FAILED");
  EXPECT_NE(rows[0]["reason"].get<std::string>().find("/result.json: not a regular file (a FIFO)"),
            std::string::npos)
      << rows[0];
  EXPECT_EQ(kdx({"show", rows[0]["id"]}).exit_code, 0);
  EXPECT_EQ(kdx({"cancel", "-e", "h"}).exit_code, 0);
}

TEST_F(Round2, ReportRefusesAnUnknownGroupingKey) {
  toy_experiment();
  ASSERT_EQ(kdx({"submit", "exp.yaml", "--wait"}).exit_code, 0);
  auto r = kdx({"report", "--group-by", "nonsense,arch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find(" (the runs' keys")),
            "kdx: error: --group-by: unknown key 'nonsense'");
  EXPECT_EQ(kdx({"report", "--group-by", "arch,hidden"}).exit_code, 0);
}

void zero_middle(const std::string& path, size_t bytes) {
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string zeros(bytes, '\0');
  off_t at = (st.st_size / 2) / 4096 * 4096;
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), at), static_cast<ssize_t>(bytes));
  ::close(fd);
}

// 8 KB zeroed in the middle of the registry: submit said "scheduling in the background" and
// exited 0 while its scheduler died; report said "no runs".
TEST_F(Round2, ACorruptRegistryIsSaidToBeCorruptWithTheWayOut) {
  std::string grid = "[";
  for (int i = 1; i <= 60; ++i) grid += (i > 1 ? ", " : "") + std::to_string(i);
  toy_experiment(grid + "]");
  ASSERT_EQ(kdx({"submit", "exp.yaml", "--wait", "--jobs", "2"}).exit_code, 0);
  std::string reg = dir_.file("results/registry.sqlite");
  ASSERT_FALSE(test::file_exists(reg + "-wal") && test::slurp(reg + "-wal").size() > 0);
  zero_middle(reg, 8192);
  std::string says = reg + ": the registry is corrupt (";
  std::string way_out = "recover it with SQLite's own tool: sqlite3 " + reg + " .recover";
  for (auto cmd : std::vector<std::vector<std::string>>{{"status"}, {"report"}}) {
    auto r = kdx(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd[0] << r.out;
    EXPECT_EQ(r.err.rfind("kdx: error: " + says, 0), 0u) << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find(way_out), std::string::npos) << r.err;
  }
  toy_experiment(grid + ", 61]");
  auto r = kdx({"submit", "exp.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("scheduling in the background"), std::string::npos) << r.out;

  // The documented way out: move it aside and submit again; the finished runs are recorded
  // from their run directories, only the new one runs.
  ASSERT_EQ(::rename(reg.c_str(), (reg + ".damaged").c_str()), 0);
  r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("h: 1 new runs, 62 already completed (skipped, 62 recorded from their run "
                       "directories)"),
            std::string::npos)
      << r.out;
  auto rows = status_rows();
  EXPECT_EQ(rows.size(), 63u);  // the teacher, the logits, 61 students
  for (auto& row : rows) EXPECT_EQ(row["state"], "COMPLETED") << row;
  EXPECT_EQ(kdx({"report"}).exit_code, 0);
}

TEST_F(Round2, AGarbageRowIsNamedNotAJsonException) {
  toy_experiment();
  ASSERT_EQ(kdx({"submit", "exp.yaml", "--wait"}).exit_code, 0);
  std::string reg = dir_.file("results/registry.sqlite");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(reg.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, "UPDATE runs SET run_json='{garbage' WHERE stage='teacher'", nullptr,
                         nullptr, &err),
            SQLITE_OK);
  sqlite3_close(db);
  for (auto cmd : std::vector<std::vector<std::string>>{{"status"}, {"report"}}) {
    auto r = kdx(cmd);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err.rfind("kdx: error: registry: run ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(": its run_json is not valid JSON (the registry was edited or damaged); "
                         "recover it with"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
  }
}

// A registry on a read-only mount (or another user's, without write permission): the
// commands that only look still work, and say they changed nothing.
TEST_F(Round2, AReadOnlyRegistryCanStillBeLookedAt) {
  toy_experiment();
  ASSERT_EQ(kdx({"submit", "exp.yaml", "--wait"}).exit_code, 0);
  std::string results = dir_.file("results");
  struct Restore {
    std::string dir;
    bool mounted = false;
    ~Restore() {
      if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
      ::chmod(dir.c_str(), 0755);
      ::chmod((dir + "/registry.sqlite").c_str(), 0644);
    }
  } restore{results};
  if (::geteuid() == 0) {
    // root writes through permissions: only a read-only mount is read-only for it.
    ASSERT_EQ(::mount(results.c_str(), results.c_str(), nullptr, MS_BIND, nullptr), 0);
    restore.mounted = true;
    ASSERT_EQ(::mount(nullptr, results.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr),
              0);
  } else {
    ::chmod((results + "/registry.sqlite").c_str(), 0444);
    ::chmod(results.c_str(), 0555);
  }
  auto r = kdx({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("COMPLETED"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("is read-only: showing the states last recorded (nothing is updated)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(kdx({"report"}).exit_code, 0);
  auto rows = nlohmann::json::parse(kdx({"status", "--json"}).out);
  EXPECT_EQ(rows.size(), 4u);  // the teacher, the logits, 2 students
}

// Links made inside results/ before a submit: nothing may be written through them.
TEST_F(Round2, SymlinksInsideResultsAreRefused) {
  toy_experiment();
  ::mkdir(dir_.file("results").c_str(), 0755);
  ::mkdir(dir_.file("results/runs").c_str(), 0755);
  ::mkdir(dir_.file("outside").c_str(), 0755);
  ASSERT_EQ(::symlink(dir_.file("outside").c_str(), dir_.file("results/runs/h").c_str()), 0);
  auto r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kdx: error: " + dir_.file("results/runs/h") +
                       ": is a symbolic link; kdx writes run directories only where they are "
                       "(remove the link and submit again)\n");
  EXPECT_EQ(::rmdir(dir_.file("outside").c_str()), 0) << "something was written outside";

  // A run's checkpoint/ made a link: that run fails, nothing lands outside.
  ::unlink(dir_.file("results/runs/h").c_str());
  auto plan = nlohmann::json::parse(kdx({"submit", "exp.yaml", "--dry-run", "--json"}).out);
  std::string teacher_dir = plan["runs"][0]["run_dir"];
  ::mkdir(dir_.file("outside").c_str(), 0755);
  ::mkdir(dir_.file("results/runs/h").c_str(), 0755);
  ::mkdir(teacher_dir.c_str(), 0755);
  ASSERT_EQ(::symlink(dir_.file("outside").c_str(), (teacher_dir + "/checkpoint").c_str()), 0);
  r = kdx({"submit", "exp.yaml", "--wait"});
  EXPECT_NE(r.exit_code, 0);
  auto rows = status_rows();
  EXPECT_EQ(rows[0]["state"], "FAILED");
  EXPECT_NE(rows[0]["reason"].get<std::string>().find("/checkpoint: is a symbolic link"),
            std::string::npos)
      << rows[0];
  EXPECT_EQ(::rmdir(dir_.file("outside").c_str()), 0) << "something was written outside";
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

// The disk filling up under a run (the probe: 1 MB free while a checkpoint was saved): the
// supervisor cannot write the exit file, the registry cannot take a write. Nothing may hang,
// `status` must still show the runs, and once space is back the run is FAILED with its reason
// and `resubmit --failed` completes it. Root mounts a real 4 MB tmpfs; otherwise the same
// failures are injected with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored).
TEST_F(Round2, ADiskThatFillsUpLosesNoRun) {
  std::string results = dir_.file("results");
  ::mkdir(results.c_str(), 0755);
  struct Unmount {
    std::string dir;
    bool mounted = false;
    ~Unmount() {
      if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    }
  } unmount{results};
  bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::mount("tmpfs", results.c_str(), "tmpfs", 0, "size=4m"), 0);
    unmount.mounted = true;
  }
  // First attempt: fill the disk, then die the way a worker dies on ENOSPC (an abort).
  shell_worker_experiment("if [ -f '" + dir_.file("space_is_back") +
                              "' ]; then\n"
                              "  printf '{\"status\":\"ok\",\"metrics\":{\"f1\":0.5}}' > "
                              "\"$run_dir/result.json\"; exit 0\n"
                              "fi\n"
                              // Time for kdx to record the attempt's pid first (a pid it never
                              // recorded is settled only after 30 s).
                              "sleep 2\n"
                              "head -c 8000000 /dev/zero > \"$run_dir/fill\" 2>/dev/null\n"
                              "echo 'cannot write checkpoint: No space left on device' >&2\n"
                              "kill -ABRT $$\n",
                          "[8]");
  // kdx with its arguments; without root, under the file-size limit.
  auto limited = [&](const std::vector<std::string>& args) {
    if (root) return kdx(args);
    std::string cmd = "trap '' XFSZ; ulimit -f 400; exec '" KDX_BIN "'";
    for (auto& a : args) cmd += " '" + a + "'";
    return test::run_command({"/bin/sh", "-c", cmd}, dir_.path(),
                             {"KDX_DATA_DIR=" + dir_.file("data")});
  };
  auto r = limited({"submit", "exp.yaml", "--wait", "--jobs", "1"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  // Still full: status answers (the last recorded states, with a warning if it cannot write).
  auto full = limited({"status"});
  EXPECT_EQ(full.exit_code, 0) << full.err;
  // Space is back.
  test::run_command({"/bin/sh", "-c", "rm -f '" + results + "'/runs/h/*/fill"});
  auto rows = status_rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0]["state"], "FAILED") << rows[0];
  // Settled while the disk was full: the supervisor's exit file never landed.
  std::string reason = rows[0]["reason"];
  if (root)
    EXPECT_NE(reason.find(") and its supervisor are gone without an exit status (the filesystem "
                          "of " +
                          rows[0]["id"].get<std::string>().insert(0, results + "/runs/h/") +
                          " has less than 1 MiB free)"),
              std::string::npos)
        << rows[0];
  else
    EXPECT_FALSE(reason.empty()) << rows[0];
  for (auto& row : rows) EXPECT_NE(row["state"], "RUNNING") << row;
  dir_.write("space_is_back", "");
  r = kdx({"resubmit", "--failed", "-e", "h", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (auto& row : status_rows()) EXPECT_EQ(row["state"], "COMPLETED") << row;
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

// A prediction file that is the gold answers plus an empty duplicate of one document scored
// 99.68 (the last line won), then failed the count check with "93 != 92".
TEST_F(Round2, ADocumentIdGivenTwiceIsNamed) {
  dir_.write("gold.jsonl",
             "{\"id\": 0, \"sentences\": \"Anna met Boris.\", \"ners\": [[0, 3, \"PER\"]]}\n"
             "{\"id\": 1, \"sentences\": \"Boris left.\", \"ners\": [[0, 4, \"PER\"]]}\n");
  dir_.write("ners.txt", "PER\n");
  dir_.write("pred.jsonl",
             "{\"id\": 0, \"ners\": [[0, 3, \"PER\"]]}\n{\"id\": 1, \"ners\": [[0, 4, \"PER\"]]}\n"
             "{\"id\": 0, \"ners\": []}\n");
  auto r = kdx({"eval", "--format", "runne", "--gold", "gold.jsonl", "--pred", "pred.jsonl"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kdx: error: pred.jsonl:3: document id 0 appears again (first at line 1)\n");
  // Texts and answers in two files stay merged by id; answers from two files are not.
  dir_.write("texts.jsonl", "{\"id\": 0, \"sentences\": \"Anna met Boris.\"}\n");
  dir_.write("answers.jsonl", "{\"id\": 0, \"ners\": [[0, 3, \"PER\"]]}\n");
  r = kdx({"eval", "--format", "runne", "--gold", "texts.jsonl", "--gold", "answers.jsonl",
           "--pred", "answers.jsonl", "--types", "ners.txt"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = kdx({"eval", "--format", "runne", "--gold", "gold.jsonl", "--pred", "answers.jsonl", "--pred",
           "answers.jsonl"});
  EXPECT_EQ(r.err,
            "kdx: error: answers.jsonl:1: document id 0: its entities (\"ners\") were given "
            "already at answers.jsonl:1\n");
}

}  // namespace
}  // namespace kdx
