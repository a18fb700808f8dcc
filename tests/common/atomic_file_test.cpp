#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "common/error.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

TEST(AtomicFile, NothingAppearsBeforeCommit) {
  test::TempDir dir;
  std::string path = dir.file("result.json");
  {
    AtomicFile f(path);
    f.write("{\"half\":");
    EXPECT_FALSE(test::file_exists(path));
  }  // destroyed without commit: the temporary is gone too
  EXPECT_FALSE(test::file_exists(path));
  auto listing = test::run_command({"ls", "-A", dir.path()});
  EXPECT_EQ(listing.out, "");
}

TEST(AtomicFile, CommitReplacesWholeFile) {
  test::TempDir dir;
  std::string path = dir.write("x.json", "old content that is longer");
  write_file_atomic(path, "new");
  EXPECT_EQ(test::slurp(path), "new");
}

TEST(AtomicFile, UnwritableDirectoryIsAClearError) {
  try {
    AtomicFile f("/nonexistent-dir/result.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create /nonexistent-dir/result.json.tmp."),
              std::string::npos)
        << e.what();
  }
}

// What a SIGKILL between open and commit leaves behind is removed on the next run; files of
// live writers and files that only look similar are kept.
TEST(AtomicFile, StaleTemporariesOfDeadWritersAreRemoved) {
  test::TempDir dir;
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string d = std::to_string(dead), me = std::to_string(::getpid());
  dir.write("result.json.tmp." + d + ".123", "half");
  dir.write("checkpoint/model.safetensors.tmp." + d + ".7", "half");
  dir.write("metrics.jsonl.tmp." + me + ".9", "being written");
  dir.write("notes.tmp.txt", "a user's file");
  dir.write("x.tmp." + d + ".1.bak", "not ours");
  auto removed = remove_stale_temporaries(dir.path());
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed,
            (std::vector<std::string>{dir.file("checkpoint/model.safetensors.tmp." + d + ".7"),
                                      dir.file("result.json.tmp." + d + ".123")}));
  EXPECT_FALSE(file_exists(dir.file("result.json.tmp." + d + ".123")));
  EXPECT_TRUE(file_exists(dir.file("metrics.jsonl.tmp." + me + ".9")));
  EXPECT_TRUE(file_exists(dir.file("notes.tmp.txt")));
  EXPECT_TRUE(file_exists(dir.file("x.tmp." + d + ".1.bak")));
  EXPECT_TRUE(remove_stale_temporaries(dir.file("no-such-dir")).empty());
}

TEST(SourceError, FormatsFileLineColumnAndCaret) {
  std::string text = "a: 1\nbad: [x\n";
  EXPECT_EQ(format_source_error({"f.yaml", 2, 6}, "boom", &text),
            "f.yaml:2:6: boom\n  bad: [x\n       ^");
}

}  // namespace
}  // namespace kdx
