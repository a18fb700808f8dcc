// kdx-worker as a process on small generated CoNLL sets: the inputs it refuses (a teacher
// file that does not parse or has a field of the wrong type, an empty test split, entity
// types the classes do not have, too few documents for a dev split, a device or FIFO as a
// data file) and a full disk while it writes checkpoints and the logits cache. Every refusal
// exits 1 with one "kdx-worker: error: <file>: ..." line and writes no result.json.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/models/student.h"

namespace kdx {
namespace {

std::string error_line(const std::string& err) {
  auto p = err.find("kdx-worker: error:");
  return p == std::string::npos ? err : err.substr(p);
}

// "<name> <verb> in <city> ." three times per document: 16 lines each (15 tokens and the
// blank line), so document i starts at line 16 i + 1.
std::string toy_conll(int docs, unsigned seed) {
  const char* names[] = {"Anna", "Boris", "Clara", "Dmitri", "Elena", "Fyodor", "Galina", "Igor"};
  const char* cities[] = {"Moscow", "Kazan", "Omsk", "Tver", "Perm", "Sochi"};
  const char* verbs[] = {"lives", "works", "sings", "waits", "reads"};
  std::string out;
  unsigned r = seed;
  auto next = [&](unsigned n) {
    r = r * 1103515245u + 12345u;
    return (r >> 16) % n;
  };
  for (int d = 0; d < docs; ++d) {
    for (int s = 0; s < 3; ++s)
      out += std::string(names[next(8)]) + "\tB-PER\n" + verbs[next(5)] + "\tO\nin\tO\n" +
             cities[next(6)] + "\tB-LOC\n.\tO\n";
    out += "\n";
  }
  return out;
}

void find_files(const std::string& dir, const std::string& rel, std::vector<std::string>& out) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st;
    std::string full = dir + "/" + n;
    if (::lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      find_files(full, rel + n + "/", out);
    else
      out.push_back(rel + n);
  }
  ::closedir(d);
}

// Every file under `dir` whose name says it is a temporary (".tmp").
std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> all, tmp;
  find_files(dir, "", all);
  for (auto& f : all)
    if (f.find(".tmp") != std::string::npos) tmp.push_back(f);
  return tmp;
}

long file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

class WorkerInputs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    train_ = dir_->write("data/train.conll", toy_conll(30, 1));
    test_ = dir_->write("data/test.conll", toy_conll(5, 2));
  }
  // The finished teacher the other stages read, trained on first use.
  static bool teacher_ready() {
    if (teacher_rc_ < 0) {
      auto t = worker(
          {"--spec", write_run(run_json("teacher", "teacher", teacher_params())), "--no-latency"});
      teacher_rc_ = t.exit_code;
      teacher_err_ = t.err;
    }
    return teacher_rc_ == 0;
  }
  static void TearDownTestSuite() { delete dir_; }

  static nlohmann::json base_params() {
    return {{"seed", 1},        {"window", 32},  {"tagging", "per_type_bio"}, {"epochs", 1},
            {"batch_size", 8},  {"lr", 0.002},   {"weight_decay", 0.01},      {"warmup_steps", 0},
            {"grad_clip", 1.0}, {"patience", 0}, {"checkpoint_every", 100},   {"threads", 1},
            {"ranks", 1}};
  }
  static nlohmann::json teacher_params(nlohmann::json extra = nlohmann::json::object()) {
    auto p = base_params();
    p.update({{"arch", "bert"},
              {"layers", 1},
              {"hidden", 32},
              {"heads", 2},
              {"ffn", 64},
              {"vocab_size", 2000},
              {"lowercase", false},
              {"dropout", 0.1}});
    p.update(extra);
    return p;
  }
  static nlohmann::json student_params() {
    auto p = base_params();
    p.update({{"arch", "lstm"},
              {"hidden", 16},
              {"layers", 1},
              {"emb", 16},
              {"proj", 0},
              {"dropout", 0.1},
              {"init_embedding", false},
              {"loss",
               {{"ce_weight", 1.0}, {"kd_weight", 0.0}, {"kd_loss", "kl"}, {"temperature", 1.0}}}});
    return p;
  }
  static nlohmann::json run_json(const std::string& name, const std::string& stage,
                                 nlohmann::json params, const std::string& teacher = "teacher") {
    return {
        {"kdx_run_version", 1},
        {"id", name},
        {"experiment", "test"},
        {"stage", stage},
        {"params", params},
        {"config", nlohmann::json::object()},
        {"dataset", {{"name", "toy"}, {"format", "conll"}, {"train", {train_}}, {"test", {test_}}}},
        {"run_dir", dir_->file(name)},
        {"teacher_dir", stage == "teacher" ? "" : dir_->file(teacher)},
        {"logits_dir", dir_->file("logits")},
        {"resources", {{"cpus", 1}}}};
  }
  static std::string write_run(const nlohmann::json& j) {
    return dir_->write(j["id"].get<std::string>() + "/run.json", j.dump(2));
  }
  // A FIFO given as a data file must not block the worker: a limit in case it does.
  static test::CommandResult worker(std::vector<std::string> args,
                                    std::vector<std::string> env = {}) {
    args.insert(args.begin(), {"timeout", "-s", "KILL", "300", KDX_WORKER_BIN});
    env.push_back("OMP_NUM_THREADS=1");
    return test::run_command(args, "", env);
  }
  // The finished teacher copied to `name`, for a test to break one of its files.
  static std::string teacher_copy(const std::string& name) {
    std::string to = dir_->file(name);
    std::string cmd = "rm -rf '" + to + "' && cp -r '" + dir_->file("teacher") + "' '" + to + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return to;
  }
  static nlohmann::json model_json(const std::string& dir) {
    return nlohmann::json::parse(test::slurp(dir + "/model.json"));
  }
  // Runs `j`; expects exit 1 with exactly `message` and no result.json.
  static void expect_refused(const nlohmann::json& j, const std::string& message) {
    auto r = worker({"--spec", write_run(j), "--no-latency"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(error_line(r.err), "kdx-worker: error: " + message + "\n");
    EXPECT_FALSE(test::file_exists(j["run_dir"].get<std::string>() + "/result.json"));
  }

  static test::TempDir* dir_;
  static std::string train_, test_, teacher_err_;
  static int teacher_rc_;
};
test::TempDir* WorkerInputs::dir_ = nullptr;
std::string WorkerInputs::train_, WorkerInputs::test_, WorkerInputs::teacher_err_;
int WorkerInputs::teacher_rc_ = -1;

// Defect: the logits stage read its teacher's run.json with the parse result unchecked and
// went on with the default window and subset.
TEST_F(WorkerInputs, TeacherRunJsonThatDoesNotParseIsAnError) {
  auto own = dir_->write("broken/run.json", "{\"kdx_run_version\": 1,");
  auto r = worker({"--spec", own});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(error_line(r.err), "kdx-worker: error: " + own + ": not valid JSON\n");
  ASSERT_TRUE(teacher_ready()) << teacher_err_;
  auto t = teacher_copy("t-run");
  dir_->write("t-run/run.json", "{\"params\": {\"window\": 32,");
  expect_refused(run_json("logits-badrun", "logits", {{"seed", 1}, {"threads", 1}}, "t-run"),
                 t + "/run.json: not valid JSON");
  dir_->write("t-run/run.json", "{\"params\": {\"window\": \"32\"}}");
  expect_refused(run_json("logits-badrun", "logits", {{"seed", 1}, {"threads", 1}}, "t-run"),
                 t + "/run.json: params.window: expected an integer, got \"32\"");
}

// Defect: a field of the wrong JSON type ended in "[json.exception.type_error.302] ..."
// naming no file or field; files that did not parse fell back to defaults.
TEST_F(WorkerInputs, TeacherFilesOfTheWrongTypeNameTheFileAndTheField) {
  ASSERT_TRUE(teacher_ready()) << teacher_err_;
  nlohmann::json logits = {{"seed", 1}, {"threads", 1}};
  auto t = teacher_copy("t-arch");
  auto m = model_json(t);
  m["arch"] = 5;
  dir_->write("t-arch/model.json", m.dump());
  expect_refused(run_json("logits-arch", "logits", logits, "t-arch"),
                 t + "/model.json: arch: expected a string, got 5");
  m = model_json(dir_->file("teacher"));
  m["bert"]["hidden_size"] = "32";
  dir_->write("t-arch/model.json", m.dump());
  expect_refused(run_json("logits-arch", "logits", logits, "t-arch"),
                 t + "/model.json: bert.hidden_size: expected an integer, got \"32\"");
  m = model_json(dir_->file("teacher"));
  m["columns"] = "2";
  dir_->write("t-arch/model.json", m.dump());
  expect_refused(run_json("student-arch", "student", student_params(), "t-arch"),
                 t + "/model.json: columns: expected an integer, got \"2\"");
  dir_->write("t-arch/model.json", "[1, 2]");
  expect_refused(run_json("student-arch", "student", student_params(), "t-arch"),
                 t + "/model.json: expected a JSON object, got [1,2]");

  auto types = teacher_copy("t-types");
  dir_->write("t-types/types.json", "[\"LOC\", 5]");
  expect_refused(run_json("logits-types", "logits", logits, "t-types"),
                 types + "/types.json: [1]: expected a string, got 5");
  dir_->write("t-types/types.json", "[\"LOC\", ");
  expect_refused(run_json("student-types", "student", student_params(), "t-types"),
                 types + "/types.json: not valid JSON");

  auto tok = teacher_copy("t-tok");
  dir_->write("t-tok/tokenizer_config.json", "{\"do_lower_case\": tru");
  expect_refused(run_json("logits-tok", "logits", logits, "t-tok"),
                 tok + "/tokenizer_config.json: not valid JSON");
  dir_->write("t-tok/tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
  expect_refused(
      run_json("student-tok", "student", student_params(), "t-tok"),
      tok + "/tokenizer_config.json: do_lower_case: expected true or false, got \"yes\"");
}

TEST(ModelJson, FieldsOfTheWrongTypeNameTheFileAndTheField) {
  auto error = [](const nlohmann::json& d) {
    try {
      models::make_tagger(d, "/t/model.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(error({{"arch", 5}}), "/t/model.json: arch: expected a string, got 5");
  EXPECT_EQ(error({{"arch", "lstm"}}), "/t/model.json: vocab_size: missing (expected an integer)");
  EXPECT_EQ(error({{"arch", "lstm"}, {"vocab_size", 10}, {"hidden", 1.5}}),
            "/t/model.json: hidden: expected an integer, got 1.5");
  EXPECT_EQ(error({{"arch", "sru"}, {"vocab_size", 10}, {"conv", {{"kernels", {3, "5"}}}}}),
            "/t/model.json: conv.kernels[1]: expected an integer, got \"5\"");
  EXPECT_EQ(error({{"arch", "gru"}, {"vocab_size", 10}}),
            "/t/model.json: arch: unknown student architecture 'gru' (expected lstm, sru, srupp)");
  EXPECT_EQ(error({{"arch", "bert"}, {"columns", 2}, {"classes", 3}, {"bert", "x"}}),
            "/t/model.json: bert: expected an object, got \"x\"");
  EXPECT_EQ(error({{"arch", "bert"},
                   {"columns", 2},
                   {"classes", 3},
                   {"bert",
                    {{"vocab_size", 10},
                     {"hidden_size", 8},
                     {"num_hidden_layers", 1},
                     {"num_attention_heads", 2},
                     {"intermediate_size", 16},
                     {"hidden_act", 1}}}}),
            "/t/model.json: bert.hidden_act: expected a string, got 1");
}

// Defect: a test file with no document ended the run with rc 0 and no F1.
TEST_F(WorkerInputs, EmptyTestSplitIsAnError) {
  auto empty = dir_->write("data/empty.conll", "\n\n");
  auto j = run_json("teacher-empty-test", "teacher", teacher_params());
  j["dataset"]["test"] = {empty};
  expect_refused(j, empty + ": the test split has no documents");
}

// Defects: an entity type the classes do not have was dropped from a student's training
// data (the teacher's types.json defines the classes) and scored in the gold test file.
TEST_F(WorkerInputs, EntityTypesOutsideTheClassesAreErrors) {
  ASSERT_TRUE(teacher_ready()) << teacher_err_;
  auto train = dir_->write("data/train-org.conll", toy_conll(30, 1) + "Acme\tB-ORG\nworks\tO\n\n");
  auto j = run_json("student-org", "student", student_params());
  j["dataset"]["train"] = {train};
  expect_refused(j, train + ":481: unknown entity type 'ORG' (known: LOC, PER)");

  auto gold = dir_->write("data/test-org.conll", toy_conll(2, 3) + "Acme\tB-ORG\nInc\tI-ORG\n\n");
  auto t = run_json("teacher-org", "teacher", teacher_params());
  t["dataset"]["test"] = {gold};
  expect_refused(t, gold + ":33: unknown entity type 'ORG' (known: LOC, PER)");
  auto s = run_json("student-gold-org", "student", student_params());
  s["dataset"]["test"] = {gold};
  expect_refused(s, gold + ":33: unknown entity type 'ORG' (known: LOC, PER)");
}

// Defect: fewer than 10 training documents trained with "0 dev" and no warning, although
// the run stops early on dev F1.
TEST_F(WorkerInputs, TooFewDocumentsForADevSplitIsAnError) {
  auto small = dir_->write("data/train7.conll", toy_conll(7, 4));
  auto j = run_json("teacher-small", "teacher", teacher_params({{"patience", 2}}));
  j["dataset"]["train"] = {small};
  expect_refused(j, dir_->file("teacher-small/run.json") + ": 7 training documents in " + small +
                        " are too few for a dev split: the dev hold-out is every 10th training "
                        "document, so it needs at least 10, and params.patience 2 stops training "
                        "early on dev F1; add training documents or give the dataset a dev file "
                        "(dev: in its datasets entry)");
  auto cut = run_json("teacher-cut", "teacher",
                      teacher_params({{"lr_schedule", "plateau"}, {"max_train_docs", 7}}));
  expect_refused(cut, dir_->file("teacher-cut/run.json") +
                          ": 7 training documents (params.max_train_docs 7 of 30) in " + train_ +
                          " are too few for a dev split: the dev hold-out is every 10th training "
                          "document, so it needs at least 10, and params.lr_schedule plateau "
                          "lowers the learning rate on dev F1; add training documents (raise "
                          "params.max_train_docs) or give the dataset a dev file (dev: in its "
                          "datasets entry)");
  // An explicit dev file: all 7 train, the 5 of the dev file are the dev split.
  auto dev = dir_->write("data/dev.conll", toy_conll(5, 5));
  j["dataset"]["dev"] = {dev};
  auto r = worker({"--spec", write_run(j), "--no-latency"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("data: 7 training documents ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" unlabelled), 5 dev, 5 test"), std::string::npos) << r.err;
  auto empty = dir_->write("data/empty-dev.conll", "");
  auto no_dev = run_json("teacher-empty-dev", "teacher", teacher_params({{"patience", 2}}));
  no_dev["dataset"]["train"] = {small};
  no_dev["dataset"]["dev"] = {empty};
  expect_refused(no_dev, empty + ": the dev split has no documents");
  // A run that decides nothing on dev F1 (patience 0, no plateau) trains, and says so.
  auto quiet = run_json("teacher-nodev", "teacher", teacher_params());
  quiet["dataset"]["train"] = {small};
  r = worker({"--spec", write_run(quiet), "--no-latency"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no dev documents (7 training documents, the dev hold-out needs at least "
                       "10): no held-out score, the last epoch's weights are kept"),
            std::string::npos)
      << r.err;
}

// read_input's refusal reaches the worker: a device or a FIFO is no data file (a FIFO
// without a writer would block the read, /dev/zero never ends).
TEST_F(WorkerInputs, DeviceOrFifoAsADataFileIsRefused) {
  auto j = run_json("teacher-zero", "teacher", teacher_params());
  j["dataset"]["train"] = {"/dev/zero"};
  expect_refused(j, "/dev/zero: not a regular file (a character device)");
  std::string fifo = dir_->file("data/fifo.conll");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0) << std::strerror(errno);
  j["dataset"]["train"] = {fifo};
  expect_refused(j, fifo + ": not a regular file (a FIFO)");
  auto t = run_json("teacher-zero-test", "teacher", teacher_params());
  t["dataset"]["test"] = {"/dev/zero"};
  expect_refused(t, "/dev/zero: not a regular file (a character device)");
}

// A tmpfs of a given size, unmounted when the scope ends (a failed assertion included).
struct TmpfsMount {
  TmpfsMount(const std::string& dir, long kib) : dir(dir) {
    std::string opts = "size=" + std::to_string(kib) + "k";
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted) why = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
  std::string dir, why;
  bool mounted = false;
};

struct CheckpointSizes {
  long model = 0, optimizer = 0, state = 0;
};

// The teacher with a checkpoint after every step, run to the end: its checkpoint's sizes.
CheckpointSizes measure(const std::string& ckpt) {
  auto state = nlohmann::json::parse(test::slurp(ckpt + "/state.json"));
  return {file_size(ckpt + "/" + state["model_file"].get<std::string>()),
          file_size(ckpt + "/" + state["optimizer_file"].get<std::string>()),
          file_size(ckpt + "/state.json")};
}

// What a full disk during the second checkpoint must leave: exit 1 naming the file, the first
// checkpoint whole (and resumable), no temporary file, no result.json.
void expect_checkpoint_one_kept(const test::CommandResult& r, const std::string& run_dir) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(error_line(r.err), "kdx-worker: error: cannot write " + run_dir +
                                   "/checkpoint/optimizer-2.pt: No space left on device\n");
  auto state = nlohmann::json::parse(test::slurp(run_dir + "/checkpoint/state.json"));
  EXPECT_EQ(state["step"], 1);
  EXPECT_EQ(state["model_file"], "model-1.safetensors");
  EXPECT_EQ(state["optimizer_file"], "optimizer-1.pt");
  std::vector<std::string> files;
  find_files(run_dir + "/checkpoint", "", files);
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files,
            (std::vector<std::string>{"model-1.safetensors", "optimizer-1.pt", "state.json"}));
  EXPECT_EQ(temporaries(run_dir), std::vector<std::string>{});
  EXPECT_FALSE(test::file_exists(run_dir + "/result.json"));
}

// Defect: a full disk while torch::save wrote the optimizer state ended the worker in
// "terminate called after throwing an instance of 'c10::Error' ... unexpected pos" (the
// exception came out of PyTorchStreamWriter's destructor), with half-written files left.
// Here the disk is full by injection (KDX_FAULT_WRITE_LIMIT_BYTES): after the first
// checkpoint and the second's model file, within the second's optimizer file.
TEST_F(WorkerInputs, DiskFullWhileCheckpointingKeepsThePreviousCheckpoint) {
  auto p = teacher_params({{"checkpoint_every", 1}});
  auto full = run_json("teacher-ckpt", "teacher", p);
  ASSERT_EQ(worker({"--spec", write_run(full), "--no-latency"}).exit_code, 0);
  auto sizes = measure(dir_->file("teacher-ckpt/checkpoint"));
  ASSERT_GT(sizes.optimizer, 1000);
  long limit = sizes.model + sizes.optimizer + sizes.state + sizes.model + sizes.optimizer / 2;
  auto j = run_json("teacher-full", "teacher", p);
  auto r = worker({"--spec", write_run(j), "--no-latency"},
                  {"KDX_FAULT_WRITE_LIMIT_BYTES=" + std::to_string(limit)});
  expect_checkpoint_one_kept(r, dir_->file("teacher-full"));
  // With space again the run resumes from the checkpoint that was kept.
  auto again = worker({"--spec", write_run(j), "--no-latency"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resuming from " + dir_->file("teacher-full/checkpoint") +
                           " at epoch 1, step 1"),
            std::string::npos)
      << again.err;
}

// The same on a real filesystem that fills up: a tmpfs sized for the first checkpoint and
// half the second. Mounting needs root; where it cannot mount, the injected full disk runs
// in its place (and the test says so), so the test never passes without a full disk.
TEST_F(WorkerInputs, DiskFullOnARealFilesystem) {
  auto p = teacher_params({{"checkpoint_every", 1}});
  auto measure_run = run_json("teacher-measure", "teacher", p);
  ASSERT_EQ(worker({"--spec", write_run(measure_run), "--no-latency"}).exit_code, 0);
  auto sizes = measure(dir_->file("teacher-measure/checkpoint"));
  auto pages = [](long bytes) { return (bytes + 4095) / 4096 * 4; };  // KiB
  // vocab.txt, tokenizer_config.json, progress.json (and its temporary), state.json: one page
  // each; then two model files and one and a half optimizer files.
  long kib = 5 * 4 + 2 * pages(sizes.model) + pages(sizes.optimizer) + pages(sizes.optimizer / 2);
  std::string mount_dir = dir_->file("small-disk");
  ASSERT_EQ(::mkdir(mount_dir.c_str(), 0755), 0);
  TmpfsMount disk(mount_dir, kib);
  std::string run_dir = mount_dir + "/run";
  auto j = run_json("teacher-tmpfs", "teacher", p);
  j["run_dir"] = run_dir;
  std::vector<std::string> env;
  if (disk.mounted) {
    std::printf("[ disk     ] %ld KiB tmpfs at %s\n", kib, mount_dir.c_str());
  } else {
    std::printf(
        "[ disk     ] cannot mount a tmpfs here (%s): the full disk is injected instead "
        "(KDX_FAULT_WRITE_LIMIT_BYTES)\n",
        disk.why.c_str());
    ::testing::Test::RecordProperty("full_disk", "injected: " + disk.why);
    env.push_back(
        "KDX_FAULT_WRITE_LIMIT_BYTES=" +
        std::to_string(2 * sizes.model + sizes.optimizer + sizes.state + sizes.optimizer / 2));
  }
  ASSERT_EQ(::mkdir(run_dir.c_str(), 0755), 0);
  std::string spec = dir_->write("teacher-tmpfs.json", j.dump(2));
  expect_checkpoint_one_kept(worker({"--spec", spec, "--no-latency"}, env), run_dir);
}

// The logits cache on a full disk: the previous cache stays whole.
TEST_F(WorkerInputs, DiskFullWhileWritingTheLogitsCacheKeepsThePreviousCache) {
  ASSERT_TRUE(teacher_ready()) << teacher_err_;
  auto j = run_json("logits", "logits", {{"seed", 1}, {"threads", 1}});
  auto first = worker({"--spec", write_run(j)});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::string cache = dir_->file("logits/logits.bin");
  std::string before = test::slurp(cache);
  ASSERT_GT(before.size(), 1000u);
  ::unlink(dir_->file("logits/result.json").c_str());
  auto r = worker({"--spec", write_run(j)}, {"KDX_FAULT_WRITE_LIMIT_BYTES=1000"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(error_line(r.err),
            "kdx-worker: error: cannot write " + cache + ": No space left on device\n");
  EXPECT_EQ(test::slurp(cache), before);
  EXPECT_EQ(temporaries(dir_->file("logits")), std::vector<std::string>{});
  EXPECT_FALSE(test::file_exists(dir_->file("logits/result.json")));
}

}  // namespace
}  // namespace kdx
