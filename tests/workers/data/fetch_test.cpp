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

#include <zip.h>

#include "tests/workers/data/navec_fixture.h"
#include "workers/data/word_vectors.h"

namespace kdx::data {
namespace {

// A wheel (a zip) holding `tar` where natasha's wheel holds navec's archive.
std::string make_wheel(const test::TempDir& dir, const std::string& tar) {
  std::string path = dir.file(navec_release().wheel);
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  EXPECT_NE(z, nullptr);
  auto* src = zip_source_buffer(z, tar.data(), tar.size(), 0);
  zip_file_add(z, navec_release().member.c_str(), src, ZIP_FL_OVERWRITE);
  EXPECT_EQ(zip_close(z), 0);
  return path;
}

TEST(FetchNavec, TakesTheArchiveOutOfTheWheelAndChecksIt) {
  std::string real = test::navec_tar();
  ASSERT_TRUE(test::file_exists(real)) << real << " is missing (make test fetches it)";
  test::TempDir mirror, out;
  FetchOptions opt;
  opt.to = out.path();
  opt.wheel_url = "file://" + make_wheel(mirror, test::slurp(real));
  auto report = fetch_navec(opt);
  std::string dest = out.path() + "/navec/navec_news_v1_1B_250K_300d_100q.tar";
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0], dest + ": taken from natasha-1.6.0-py3-none-any.whl (" + opt.wheel_url +
                           "), checksum ok");
  EXPECT_EQ(sha256_file_hex(dest), navec_release().sha256);
  EXPECT_EQ(read_navec(dest).size(), 250002u);
  EXPECT_FALSE(test::file_exists(dest + ".download"));
  EXPECT_EQ(fetch_navec(opt)[0], dest + ": already present, checksum ok");
}

TEST(FetchNavec, AWheelWithOtherVectorsWritesNothing) {
  test::TempDir mirror, out;
  FetchOptions opt;
  opt.to = out.path();
  opt.wheel_url = "file://" + make_wheel(mirror, test::navec_archive({"a", "b"}, 2, 1, {{0}, {1}}));
  try {
    fetch_navec(opt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(": natasha/data/emb/navec_news_v1_1B_250K_300d_100q.tar: "
                                         "SHA-256 mismatch (expected f07270833d78"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(test::file_exists(out.path() + "/navec/navec_news_v1_1B_250K_300d_100q.tar"));
  EXPECT_FALSE(
      test::file_exists(out.path() + "/navec/navec_news_v1_1B_250K_300d_100q.tar.download"));
}

}  // namespace
}  // namespace kdx::data
