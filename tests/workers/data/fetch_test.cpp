#include "workers/data/fetch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/error.h"
#include "common/sha256.h"
#include "tests/support/test_support.h"

namespace kdx::data {
namespace {

// A file:// mirror laid out like GitHub's raw paths, built from the real data copies.
class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::shared_data_dir();
    ASSERT_FALSE(root_.empty());
    for (auto& f : remote_datasets()[0].files) {
      std::string dst = mirror_.path() + "/dialogue-evaluation/RuNNE/raw/HEAD/" + f.remote;
      mirror_.write("dialogue-evaluation/RuNNE/raw/HEAD/" + f.remote,
                    test::slurp(root_ + "/" + f.local));
    }
    opt_.base_url = "file://" + mirror_.path();
    opt_.to = out_.path();
  }
  std::string root_;
  test::TempDir mirror_, out_;
  FetchOptions opt_;
};

TEST_F(FetchTest, DownloadsVerifiesAndSkipsWhatIsPresent) {
  auto report = fetch_dataset("runne", opt_);
  ASSERT_EQ(report.size(), 5u);
  EXPECT_EQ(report[0], out_.path() + "/runne/train.jsonl: downloaded, checksum ok");
  EXPECT_EQ(sha256_file_hex(out_.path() + "/runne/train.jsonl"),
            sha256_file_hex(root_ + "/runne/train.jsonl"));
  auto again = fetch_dataset("runne", opt_);
  EXPECT_EQ(again[0], out_.path() + "/runne/train.jsonl: already present, checksum ok");
}

TEST_F(FetchTest, ChecksumMismatchLeavesNothing) {
  mirror_.write("dialogue-evaluation/RuNNE/raw/HEAD/public_data/dev.jsonl", "tampered\n");
  try {
    fetch_dataset("runne", opt_);
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("public_data/dev.jsonl: SHA-256 mismatch (expected 46b65e95"),
              std::string::npos)
        << msg;
  }
  EXPECT_TRUE(
      test::file_exists(out_.path() + "/runne/train.jsonl"));  // verified before the bad one
  EXPECT_FALSE(test::file_exists(out_.path() + "/runne/dev.jsonl"));
  EXPECT_FALSE(test::file_exists(out_.path() + "/runne/dev.jsonl.part"));
}

TEST_F(FetchTest, MissingRemoteFileIsAClearError) {
  opt_.base_url = "file://" + mirror_.path() + "/nowhere";
  try {
    fetch_dataset("runne", opt_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "download failed (curl exit 37): file://" + mirror_.path() +
                  "/nowhere/dialogue-evaluation/RuNNE/raw/HEAD/public_data/train.jsonl");
  }
}

}  // namespace
}  // namespace kdx::data
