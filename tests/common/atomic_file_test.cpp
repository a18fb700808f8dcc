#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

TEST(SourceError, FormatsFileLineColumnAndCaret) {
  std::string text = "a: 1\nbad: [x\n";
  EXPECT_EQ(format_source_error({"f.yaml", 2, 6}, "boom", &text),
            "f.yaml:2:6: boom\n  bad: [x\n       ^");
}

}  // namespace
}  // namespace kdx
