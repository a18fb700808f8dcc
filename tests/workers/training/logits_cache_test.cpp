#include "workers/training/logits_cache.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/support/test_support.h"

namespace kdx::training {
namespace {

TEST(LogitsCache, RoundTripFp32AndFp16) {
  test::TempDir dir;
  torch::manual_seed(2);
  auto a = torch::randn({4, 6}), b = torch::randn({2, 6});
  for (bool fp16 : {false, true}) {
    std::string path = dir.file(fp16 ? "h.bin" : "f.bin");
    LogitsWriter w(path, "key-1", 6, fp16);
    w.add({2, 10, 11, 3}, a);
    w.add({2, 3}, b);
    w.commit();
    LogitsCache c(path, "key-1");
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c.width(), 6);
    auto ra = c.get(0, {2, 10, 11, 3}), rb = c.get(1, {2, 3});
    double tol = fp16 ? 2e-3 : 0;
    EXPECT_LE((ra - a).abs().max().item<float>(), tol);
    EXPECT_LE((rb - b).abs().max().item<float>(), tol);
  }
}

TEST(LogitsCache, StaleKeyOrIdsAreErrors) {
  test::TempDir dir;
  std::string path = dir.file("l.bin");
  LogitsWriter w(path, "teacher-A", 3, false);
  w.add({2, 5, 3}, torch::zeros({3, 3}));
  w.commit();
  try {
    LogitsCache c(path, "teacher-B");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  ": stale teacher logits cache: it was made for key teacher-A..."),
              std::string::npos)
        << e.what();
  }
  LogitsCache c(path, "teacher-A");
  try {
    c.get(0, {2, 6, 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": stale teacher logits cache: example 0 has other token ids than this run's");
  }
  test::TempDir other;
  std::string truncated = other.write("t.bin", test::slurp(path).substr(0, 60));
  EXPECT_THROW(LogitsCache(truncated, "teacher-A"), Error);
}

}  // namespace
}  // namespace kdx::training
