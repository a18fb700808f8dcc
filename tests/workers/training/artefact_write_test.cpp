// A full disk while the worker writes a checkpoint, weights or the logits cache: an error
// naming the file, the previous file (or checkpoint) whole, no temporary file left. The full
// disk is KDX_FAULT_WRITE_LIMIT_BYTES (workers/training/artefact_file.h), so these run
// anywhere; worker_inputs_test.cpp also fills a real tmpfs where it can mount one.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/models/safetensors.h"
#include "workers/training/artefact_file.h"
#include "workers/training/checkpoint.h"
#include "workers/training/logits_cache.h"

namespace kdx::training {
namespace {

// Writes fail once `bytes` more have been written through ArtefactFile; unset again at the
// end of the scope, whatever the test's assertions did.
struct DiskFullAfter {
  explicit DiskFullAfter(uint64_t bytes) {
    ::setenv(kFaultWriteLimitVariable, std::to_string(artefact_bytes_written() + bytes).c_str(), 1);
  }
  ~DiskFullAfter() { ::unsetenv(kFaultWriteLimitVariable); }
};

using test::error_of;

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

long file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

TEST(ArtefactFile, AFailedWriteKeepsThePreviousFileAndNoTemporary) {
  test::TempDir dir;
  std::string path = dir.file("weights.bin");
  write_artefact(path, "old content");
  {
    DiskFullAfter full(4);
    EXPECT_EQ(error_of([&] { write_artefact(path, "new content, longer than four bytes"); }),
              "cannot write " + path + ": No space left on device");
  }
  EXPECT_EQ(test::slurp(path), "old content");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"weights.bin"});
  // A producer that is handed the sink (torch::save) never sees the failure; the caller does.
  {
    DiskFullAfter full(4);
    bool produced = false;
    EXPECT_EQ(error_of([&] {
                write_artefact_streamed(path, [&](const auto& sink) {
                  EXPECT_EQ(sink("0123456789", 10), 10u);
                  EXPECT_EQ(sink("abc", 3), 3u);
                  produced = true;
                });
              }),
              "cannot write " + path + ": No space left on device");
    EXPECT_TRUE(produced);
  }
  EXPECT_EQ(test::slurp(path), "old content");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"weights.bin"});
  EXPECT_EQ(error_of([&] { write_artefact(dir.file("no/such/dir/x"), "x"); }),
            "cannot write " + dir.file("no/such/dir/x") + ": No such file or directory");
}

TEST(ArtefactFile, SafetensorsOnAFullDiskKeepTheOldWeights) {
  test::TempDir dir;
  std::string path = dir.file("model.safetensors");
  models::RawTensor t{"F32", {2}, std::string(8, '\1')};
  models::write_safetensors(path, {{"w", t}});
  std::string before = test::slurp(path);
  t.bytes = std::string(8, '\2');
  {
    DiskFullAfter full(10);
    EXPECT_EQ(error_of([&] {
                models::write_safetensors(path, {{"w", t}});
              }),
              "cannot write " + path + ": No space left on device");
  }
  EXPECT_EQ(test::slurp(path), before);
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"model.safetensors"});
}

struct Tiny {
  torch::nn::Linear model{torch::nn::LinearOptions(8, 4)};
  torch::optim::AdamW optimizer{model->parameters(), torch::optim::AdamWOptions(0.01)};
  void step() {
    optimizer.zero_grad();
    model(torch::ones({2, 8})).sum().backward();
    optimizer.step();
  }
};

// The disk fills while the optimizer state of the second checkpoint is written (torch::save,
// whose own file writer used to std::terminate the worker here: "unexpected pos").
TEST(Checkpoint, DiskFullKeepsThePreviousCheckpointWhole) {
  test::TempDir dir;
  std::string ckpt = dir.file("checkpoint");
  torch::manual_seed(1);
  Tiny a;
  a.step();
  TrainingState s1;
  s1.step = 1;
  s1.epoch = 0;
  save_checkpoint(ckpt, *a.model, a.optimizer, s1);
  auto committed = names_in(ckpt);
  EXPECT_EQ(committed,
            (std::vector<std::string>{"model-1.safetensors", "optimizer-1.pt", "state.json"}));
  std::string state_before = test::slurp(ckpt + "/state.json");
  a.step();
  TrainingState s2 = s1;
  s2.step = 2;
  {
    // The model file fits, the optimizer file does not.
    DiskFullAfter full(static_cast<uint64_t>(file_size(ckpt + "/model-1.safetensors")) + 100);
    EXPECT_EQ(error_of([&] { save_checkpoint(ckpt, *a.model, a.optimizer, s2); }),
              "cannot write " + ckpt + "/optimizer-2.pt: No space left on device");
  }
  // Nothing of the failed checkpoint is left; the committed one loads.
  EXPECT_EQ(names_in(ckpt), committed);
  EXPECT_EQ(test::slurp(ckpt + "/state.json"), state_before);
  Tiny b;
  auto resumed = load_checkpoint(ckpt, *b.model, b.optimizer);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->step, 1);

  // The same step saved again (a checkpoint at an epoch's last step is written twice) and
  // failing: the files the committed state names are not removed.
  {
    DiskFullAfter full(100);
    EXPECT_EQ(error_of([&] { save_checkpoint(ckpt, *a.model, a.optimizer, s1); }),
              "cannot write " + ckpt + "/model-1.safetensors: No space left on device");
  }
  EXPECT_EQ(names_in(ckpt), committed);
  Tiny c;
  ASSERT_TRUE(load_checkpoint(ckpt, *c.model, c.optimizer).has_value());
  // Without a limit the next checkpoint replaces the old one.
  save_checkpoint(ckpt, *a.model, a.optimizer, s2);
  EXPECT_EQ(names_in(ckpt),
            (std::vector<std::string>{"model-2.safetensors", "optimizer-2.pt", "state.json"}));
}

TEST(LogitsCache, DiskFullKeepsThePreviousCache) {
  test::TempDir dir;
  std::string path = dir.file("logits.bin");
  LogitsWriter w(path, "key-1", 3, false);
  w.add({2, 5, 3}, torch::zeros({3, 3}));
  w.commit();
  std::string before = test::slurp(path);
  LogitsWriter w2(path, "key-2", 3, false);
  w2.add({2, 5, 3}, torch::ones({3, 3}));
  {
    DiskFullAfter full(20);
    EXPECT_EQ(error_of([&] { w2.commit(); }), "cannot write " + path + ": No space left on device");
  }
  EXPECT_EQ(test::slurp(path), before);
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"logits.bin"});
  LogitsCache c(path, "key-1");
  EXPECT_EQ(c.size(), 1u);
}

}  // namespace
}  // namespace kdx::training
