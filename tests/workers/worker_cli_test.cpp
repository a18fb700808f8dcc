// kdx-worker end to end as a process, on the real RuNNE data: teacher -> logits ->
// student, stale caches, stop-and-resume on SIGTERM, export, bad input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/test_support.h"
#include "workers/data/document.h"
#include "workers/data/tokenizer.h"

namespace kdx {
namespace {

std::string error_line(const std::string& err) {
  auto p = err.find("kdx-worker: error:");
  return p == std::string::npos ? err : err.substr(p);
}

class WorkerCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = test::shared_data_dir();
    dir_ = new test::TempDir();
  }
  static void TearDownTestSuite() { delete dir_; }

  static nlohmann::json run_json(const std::string& name, const std::string& stage,
                                 nlohmann::json params) {
    nlohmann::json base = {{"seed", 1},
                           {"window", 64},
                           {"tagging", "per_type_bio"},
                           {"max_train_docs", 24},
                           {"max_test_docs", 4},
                           {"epochs", 1},
                           {"batch_size", 8},
                           {"lr", 0.002},
                           {"weight_decay", 0.01},
                           {"warmup_steps", 2},
                           {"grad_clip", 1.0},
                           {"patience", 0},
                           {"checkpoint_every", 2},
                           {"threads", 1},
                           {"ranks", 1}};
    // The logits stage takes its window and subset from the teacher: its own table is short.
    if (stage == "logits") base = {{"seed", 1}, {"threads", 1}};
    base.update(params);
    return test::runne_run_json(data_, name, stage, base, dir_->file(name),
                                stage == "teacher" ? "" : dir_->file("teacher"),
                                dir_->file("logits"));
  }
  static std::string write_run(const nlohmann::json& j) {
    return dir_->write(j["id"].get<std::string>() + "/run.json", j.dump(2));
  }
  static test::CommandResult worker(std::vector<std::string> args) {
    args.insert(args.begin(), KDX_WORKER_BIN);
    return test::run_command(args, "", {"OMP_NUM_THREADS=1"});
  }
  static nlohmann::json result(const std::string& name) {
    return nlohmann::json::parse(test::slurp(dir_->file(name + "/result.json")));
  }
  static nlohmann::json teacher_params() {
    return {{"arch", "bert"}, {"layers", 1},        {"hidden", 32},       {"heads", 2},
            {"ffn", 64},      {"vocab_size", 2000}, {"lowercase", false}, {"dropout", 0.1}};
  }
  static nlohmann::json student_params(const std::string& arch, double kd) {
    return {{"arch", arch},
            {"hidden", 16},
            {"layers", 1},
            {"emb", 16},
            {"proj", 0},
            {"dropout", 0.1},
            {"init_embedding", arch == "lstm"},
            {"loss",
             {{"ce_weight", 1.0}, {"kd_weight", kd}, {"kd_loss", "mse"}, {"temperature", 1.0}}}};
  }
  static std::string data_;
  static test::TempDir* dir_;
};
std::string WorkerCli::data_;
test::TempDir* WorkerCli::dir_ = nullptr;

TEST_F(WorkerCli, TeacherLogitsStudentsExportAndStaleness) {
  ASSERT_FALSE(data_.empty());
  auto t = worker({"--spec", write_run(run_json("teacher", "teacher", teacher_params())),
                   "--latency-runs", "3"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.err.find("BLAS /usr/lib/x86_64-linux-gnu/openblas-openmp/"), std::string::npos)
      << t.err;
  // device: auto on a machine without a GPU: the CPU, no mixed precision, said in the log.
  EXPECT_NE(t.err.find("rank 0/1 (single), device cpu, amp none,"), std::string::npos) << t.err;
  auto tr = result("teacher");
  EXPECT_EQ(tr["status"], "ok");
  EXPECT_EQ(tr["metrics"]["device"], "cpu");
  EXPECT_EQ(tr["metrics"]["amp"], "none");
  EXPECT_EQ(tr["metrics"]["gpu_hours"], 0.0);
  EXPECT_EQ(tr["metrics"]["peak_device_memory_mb"], 0.0);
  EXPECT_FALSE(tr["metrics"].contains("gpu_latency_b1_ms"));
  for (auto key : {"f1", "precision", "recall", "macro_f1", "macro_f1_few_shot", "params",
                   "size_mb", "latency_b1_ms", "latency_b32_ms"})
    EXPECT_TRUE(tr["metrics"].contains(key)) << key;
  for (auto f : {"config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors",
                 "predictions.jsonl", "metrics.jsonl"})
    EXPECT_TRUE(test::file_exists(dir_->file(std::string("teacher/") + f))) << f;
  // The predictions file is what the official scorer reads: kdx eval gives the same F1.
  auto ev = test::run_command({KDX_BIN, "eval", "--format", "runne", "--gold",
                               data_ + "/runne/test_with_answers.jsonl", "--pred",
                               dir_->file("teacher/predictions.jsonl"), "--json"});
  EXPECT_NE(ev.exit_code, 0);  // 4 of 93 documents predicted: the official checks refuse it
  EXPECT_NE(ev.err.find("93 != 4"), std::string::npos) << ev.err;

  auto l = worker({"--spec", write_run(run_json("logits", "logits", {{"precision", "fp16"}}))});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_GT(result("logits")["metrics"]["rows"].get<long>(), 1000);

  for (auto [arch, kd] : {std::pair{"lstm", 1.0}, {"sru", 1.0}, {"srupp", 0.0}}) {
    std::string name = std::string("student-") + arch;
    auto s = worker({"--spec", write_run(run_json(name, "student", student_params(arch, kd))),
                     "--latency-runs", "3"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto r = result(name);
    EXPECT_LT(r["metrics"]["params"].get<long>(), tr["metrics"]["params"].get<long>());
  }

  auto e = worker({"export", "--run", dir_->file("student-sru"), "--out", dir_->file("exported")});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  // The deployment example on a real RuNNE text: every line it prints is an entity whose
  // surface is the text between its offsets.
  std::string text = nlohmann::json::parse(
      test::slurp(data_ + "/runne/train.jsonl")
          .substr(0, test::slurp(data_ + "/runne/train.jsonl").find('\n')))["sentences"];
  dir_->write("text.txt", text);
  auto tag = test::run_command(
      {"sh", "-c",
       std::string(KDX_TAG_BIN) + " " + dir_->file("exported") + " < " + dir_->file("text.txt")});
  ASSERT_EQ(tag.exit_code, 0) << tag.err;
  auto cps = data::decode_utf8(text, "text");
  std::istringstream lines(tag.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    int start = -1, end = -1;
    std::string type, surface;
    f >> start >> end >> type;
    std::getline(f >> std::ws, surface);
    ASSERT_TRUE(start >= 0 && end > start && end <= static_cast<int>(cps.size())) << line;
    auto want = cps.substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
    for (auto& c : want)
      if (c == U'\n' || c == U'\t') c = U' ';
    EXPECT_EQ(surface, data::encode_utf8(want)) << line;
  }

  // Batch mode over 12 test documents: one RuNNE line per document, in order; the first
  // document's entities are the single-text mode's on the same text; and the Python peer
  // (tools/bench/tag.py: its own tokenizer, windows, model code and decoding, reading the
  // same export) predicts the same entities for every document, for an SRU and an LSTM.
  std::string docs;
  {
    std::istringstream all(test::slurp(data_ + "/runne/test.jsonl"));
    std::string line;
    for (int i = 0; i < 12 && std::getline(all, line); ++i) docs += line + "\n";
  }
  dir_->write("batch.jsonl", docs);
  auto one = test::run_command(
      {"sh", "-c",
       std::string(KDX_TAG_BIN) + " " + dir_->file("exported") + " <<'EOF'\n" +
           nlohmann::json::parse(docs.substr(0, docs.find('\n')))["sentences"].get<std::string>() +
           "\nEOF"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(
      worker({"export", "--run", dir_->file("student-lstm"), "--out", dir_->file("exported-lstm")})
          .exit_code,
      0);
  long compared = 0;
  for (auto model : {"exported", "exported-lstm"}) {
    auto b = test::run_command({KDX_TAG_BIN, dir_->file(model), "--batch",
                                dir_->file("batch.jsonl"), "--threads", "1", "--stats", "json"});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    auto stats = nlohmann::json::parse(b.err);
    EXPECT_EQ(stats["documents"], 12);
    EXPECT_GT(stats["tokens_per_s"].get<double>(), 0);
    std::vector<nlohmann::json> lines;
    std::istringstream out(b.out);
    for (std::string line; std::getline(out, line);) lines.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(lines.size(), 12u);
    EXPECT_EQ(lines[0]["id"], nlohmann::json::parse(docs.substr(0, docs.find('\n')))["id"].dump());
    if (std::string(model) == "exported") {
      // Single-text mode prints end exclusive; RuNNE lines carry the last character.
      std::istringstream single(one.out);
      std::vector<nlohmann::json> want;
      for (std::string line; std::getline(single, line);) {
        std::istringstream f(line);
        long s = 0, e = 0;
        std::string type;
        f >> s >> e >> type;
        want.push_back({s, e - 1, type});
      }
      EXPECT_EQ(lines[0]["ners"], nlohmann::json(want));
    }
    auto py = test::run_command({"/usr/bin/python3", KDX_SOURCE_DIR "/tools/bench/tag.py",
                                 dir_->file(model), dir_->file("batch.jsonl"), "--out",
                                 dir_->file(std::string(model) + "-py.jsonl")});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    std::istringstream py_out(test::slurp(dir_->file(std::string(model) + "-py.jsonl")));
    size_t i = 0;
    for (std::string line; std::getline(py_out, line); ++i) {
      ASSERT_LT(i, lines.size());
      auto p = nlohmann::json::parse(line);
      EXPECT_EQ(p["ners"], lines[i]["ners"]) << model << " document " << p["id"];
      compared += static_cast<long>(p["ners"].size());
    }
    EXPECT_EQ(i, 12u);
  }
  EXPECT_GT(compared, 0) << "no entity predicted: the comparison proved nothing";

  // The export records the run's decoding (none in run.json: greedy); --decoding viterbi
  // overrides it, and its entities start and end where the texts' words do.
  EXPECT_EQ(nlohmann::json::parse(test::slurp(dir_->file("exported/encoding.json")))["decoding"],
            "greedy");
  auto vit =
      test::run_command({KDX_TAG_BIN, dir_->file("exported"), "--batch", dir_->file("batch.jsonl"),
                         "--threads", "1", "--stats", "none", "--decoding", "viterbi"});
  ASSERT_EQ(vit.exit_code, 0) << vit.err;
  std::istringstream vit_out(vit.out), texts(docs);
  long vit_entities = 0;
  for (std::string line, text_line;
       std::getline(vit_out, line) && std::getline(texts, text_line);) {
    auto text =
        data::decode_utf8(nlohmann::json::parse(text_line)["sentences"].get<std::string>(), "test");
    std::set<int> starts, ends;
    for (auto& w : data::basic_tokenize(text, {})) {
      starts.insert(w.start);
      ends.insert(w.end);
    }
    for (auto& e : nlohmann::json::parse(line)["ners"]) {
      ++vit_entities;
      EXPECT_TRUE(starts.count(e[0].get<int>()) && ends.count(e[1].get<int>() + 1)) << e;
    }
  }
  // These one-epoch models open most greedy entities with an I (the lenient decode), which
  // Viterbi's constraints forbid: the override shows in the output differing from the
  // export's own greedy decoding. (The boundary property over >10k entities: data_tests,
  // Decoding.*RuNNE*.)
  auto greedy = test::run_command({KDX_TAG_BIN, dir_->file("exported"), "--batch",
                                   dir_->file("batch.jsonl"), "--threads", "1", "--stats", "none"});
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  EXPECT_NE(greedy.out, vit.out);
  std::printf("[ kdx-tag  ] viterbi: %ld entities\n", vit_entities);
  auto bad = test::run_command({KDX_TAG_BIN, dir_->file("exported"), "--batch",
                                dir_->file("batch.jsonl"), "--decoding", "beam"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("--decoding"), std::string::npos) << bad.err;

  // Retrain the teacher with another seed: the cache no longer belongs to it.
  std::string cache_before = test::slurp(dir_->file("logits/logits.bin"));
  auto t2 = run_json("teacher", "teacher", teacher_params());
  t2["params"]["seed"] = 2;
  ::system(("rm -rf " + dir_->file("teacher/checkpoint")).c_str());
  ASSERT_EQ(worker({"--spec", write_run(t2), "--no-latency"}).exit_code, 0);
  auto stale = worker(
      {"--spec", write_run(run_json("student-stale", "student", student_params("sru", 1.0)))});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_NE(stale.err.find("stale teacher logits cache"), std::string::npos) << stale.err;
  EXPECT_FALSE(test::file_exists(dir_->file("student-stale/result.json")));
}

TEST_F(WorkerCli, SigtermCheckpointsAndTheRerunResumes) {
  ASSERT_FALSE(data_.empty());
  auto p = teacher_params();
  p["epochs"] = 30;
  p["max_train_docs"] = 60;
  p["checkpoint_every"] = 1000;
  std::string spec = write_run(run_json("stopped", "teacher", p));
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(dir_->file("stopped.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::execl(KDX_WORKER_BIN, KDX_WORKER_BIN, "--spec", spec.c_str(), "--no-latency", "--threads",
            "1", nullptr);
    ::_exit(127);
  }
  // Wait until training has really started (the first epoch's metrics line), then stop it.
  for (int i = 0; i < 600 && !test::file_exists(dir_->file("stopped/metrics.jsonl")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_NE(test::slurp(dir_->file("stopped.err"))
                .find("checkpoint written, exiting so the run can resume"),
            std::string::npos);
  auto state = nlohmann::json::parse(test::slurp(dir_->file("stopped/checkpoint/state.json")));
  EXPECT_GE(state["epoch"].get<int>(), 1);
  EXPECT_FALSE(test::file_exists(dir_->file("stopped/result.json")));
  // What a SIGKILL in the middle of a checkpoint write leaves: the rerun removes it.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string stale =
      dir_->write("stopped/checkpoint/model.safetensors.tmp." + std::to_string(dead) + ".42", "x");
  // Rerun with fewer epochs left: it resumes instead of starting over.
  auto p2 = p;
  p2["epochs"] = state["epoch"].get<int>() + 1;
  auto again = worker({"--spec", write_run(run_json("stopped", "teacher", p2)), "--no-latency"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resuming from " + dir_->file("stopped/checkpoint")), std::string::npos)
      << again.err;
  EXPECT_FALSE(test::file_exists(stale));
  EXPECT_NE(again.err.find("removed " + stale + ", left by an interrupted write"),
            std::string::npos)
      << again.err;
}

// A stop before the training loop has anything to save (here: while the teacher's tokenizer
// is trained on every training document) exits at once, 128 + SIGTERM, writing nothing; it used
// to wait for the loop's first step, and a stage without a loop (logits) ignored it until
// Slurm's SIGKILL.
TEST_F(WorkerCli, SigtermBeforeTrainingExitsAtOnceWritingNothing) {
  ASSERT_FALSE(data_.empty());
  auto p = teacher_params();
  p["max_train_docs"] = 0;  // all of them: seconds of preparation before the first step
  p["vocab_size"] = 8000;
  std::string spec = write_run(run_json("early-stop", "teacher", p));
  const std::string err = dir_->file("early-stop.err");
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::execl(KDX_WORKER_BIN, KDX_WORKER_BIN, "--spec", spec.c_str(), "--no-latency", "--threads",
            "1", nullptr);
    ::_exit(127);
  }
  // The worker's first log line comes after its signal handlers are installed.
  for (int i = 0; i < 600 && test::slurp(err).find("stage teacher") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto sent = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  ASSERT_TRUE(WIFEXITED(status)) << test::slurp(err);
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << test::slurp(err);
  EXPECT_LT(waited, 2.0);
  EXPECT_EQ(test::slurp(err).find("checkpoint written"), std::string::npos) << test::slurp(err);
  EXPECT_FALSE(test::file_exists(dir_->file("early-stop/checkpoint/state.json")));
  EXPECT_FALSE(test::file_exists(dir_->file("early-stop/result.json")));
}

TEST_F(WorkerCli, BadInputIsAClearErrorWithoutResult) {
  auto bad = run_json("bad-arch", "student", student_params("gru", 0.0));
  auto b = worker({"--spec", write_run(bad)});
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_EQ(error_line(b.err), "kdx-worker: error: " + dir_->file("bad-arch/run.json") +
                                   ": params.arch: 'gru' is not one of: lstm, sru, srupp\n");
  EXPECT_FALSE(test::file_exists(dir_->file("bad-arch/result.json")));
  auto missing = run_json("no-teacher", "student", student_params("lstm", 0.0));
  missing["teacher_dir"] = dir_->file("nowhere");
  auto r = worker({"--spec", write_run(missing)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(error_line(r.err), "kdx-worker: error: " + dir_->file("nowhere") +
                                   ": not a finished kdx teacher (no model.json)\n");
  auto hf = run_json("bad-init", "teacher", teacher_params());
  hf["params"]["init_from"] = dir_->file("no-such-checkpoint");
  auto h = worker({"--spec", write_run(hf)});
  EXPECT_EQ(error_line(h.err), "kdx-worker: error: " + dir_->file("no-such-checkpoint") +
                                   ": not a Hugging Face checkpoint (no config.json)\n");
  EXPECT_FALSE(test::file_exists(dir_->file("bad-init/result.json")));
  auto r2 = worker({"--spec", dir_->write("junk.json", "{\"kdx_run_version\": 1}")});
  EXPECT_EQ(error_line(r2.err),
            "kdx-worker: error: " + dir_->file("junk.json") + ": missing field \"id\"\n");
  // Found by fuzz_run_json: a field of the wrong JSON type ended kdx-worker with an uncaught
  // JSON library exception (abort) instead of an error naming the field.
  auto typed = run_json("bad-type", "student", student_params("lstm", 0.0));
  typed["dataset"]["name"] = 0;
  auto t = worker({"--spec", write_run(typed)});
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_EQ(error_line(t.err), "kdx-worker: error: " + dir_->file("bad-type/run.json") +
                                   ": field \"dataset.name\" must be a string\n");
}

}  // namespace
}  // namespace kdx
