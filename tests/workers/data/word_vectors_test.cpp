#include "workers/data/word_vectors.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <functional>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "tests/workers/data/navec_fixture.h"

namespace kdx::data {
namespace {

using test::error_of;

TEST(WordVectors, ReadsAGeneratedNavecArchive) {
  auto tar = test::navec_archive({"кот", "ёж", "<unk>"}, 6, 3, {{0, 1, 2}, {3, 3, 3}, {1, 0, 1}});
  auto v = parse_navec(tar, "t.tar");
  EXPECT_EQ(v.dim, 6);
  EXPECT_EQ(v.size(), 3u);
  EXPECT_TRUE(v.lowercase);
  std::vector<float> out(6);
  v.vector(1, out.data());
  // Row 1 takes centroid 3 of each of the 3 codebooks (each 2 wide).
  for (int q = 0; q < 3; ++q) {
    EXPECT_FLOAT_EQ(out[2 * q], test::navec_code(q, 3, 0));
    EXPECT_FLOAT_EQ(out[2 * q + 1], test::navec_code(q, 3, 1));
  }
  EXPECT_EQ(v.find("кот"), 0u);
  EXPECT_EQ(v.find("Кот"), 0u);  // the vocabulary is lower case
  EXPECT_EQ(v.find("ЁЖ"), 1u);
  EXPECT_EQ(v.find("собака"), std::nullopt);
}

TEST(WordVectors, EOrYoWhicheverTheVocabularyHas) {
  auto tar = test::navec_archive({"елка", "<unk>"}, 2, 1, {{0}, {1}});
  auto v = parse_navec(tar, "t.tar");
  EXPECT_EQ(v.find("ёлка"), 0u);
  EXPECT_EQ(v.find("Ёлка"), 0u);
}

TEST(WordVectors, BrokenNavecArchivesAreNamed) {
  auto good = test::navec_archive({"a", "b"}, 4, 2, {{0, 1}, {1, 0}});
  std::string bad = good;
  bad[148] = 'x';  // the first header's checksum
  EXPECT_EQ(error_of([&] { parse_navec(bad, "t.tar"); }),
            "t.tar: not a tar archive (header checksum mismatch at byte 0)");
  EXPECT_EQ(error_of([&] { parse_navec(good.substr(0, 700), "t.tar"); }),
            "t.tar: not a navec archive (no vocab.bin)");
  EXPECT_EQ(error_of([&] {
              parse_navec(test::navec_archive({"a", "b"}, 4, 2, {{0, 1}, {1, 0}}, "pq"), "t.tar");
            }),
            "t.tar: not a navec archive (no pq.bin)");
  EXPECT_EQ(error_of([&] {
              parse_navec(test::navec_archive({"a", "a"}, 4, 2, {{0, 1}, {1, 0}}), "t.tar");
            }),
            "t.tar: vocab.bin: the word 'a' appears twice (rows 0 and 1)");
  EXPECT_EQ(error_of([&] {
              parse_navec(test::navec_archive({"a", "b"}, 4, 2, {{0, 1}, {1, 9}}), "t.tar");
            }),
            "t.tar: pq.bin: vector 1 names centroid 9 of 4");
  EXPECT_EQ(error_of([&] {
              parse_navec(test::navec_archive({"a"}, 4, 2, {{0, 1}, {1, 0}}), "t.tar");
            }),
            "t.tar: vocab.bin: 1 words, pq.bin 2 vectors");
}

TEST(WordVectors, TextFormatWithAndWithoutHeader) {
  auto v = parse_text_vectors("2 3\nкот 0.1 0.2 0.3\nПёс 1 2 3\n", "v.txt");
  EXPECT_EQ(v.dim, 3);
  EXPECT_EQ(v.size(), 2u);
  EXPECT_FALSE(v.lowercase);
  std::vector<float> out(3);
  v.vector(*v.find("Пёс"), out.data());
  EXPECT_FLOAT_EQ(out[2], 3.f);
  EXPECT_EQ(parse_text_vectors("a 1 2\nb 3 4\n", "v.txt").dim, 2);
  EXPECT_EQ(error_of([] { parse_text_vectors("a 1 2\nb 3\n", "v.txt"); }),
            "v.txt:2: 1 values, expected 2");
  EXPECT_EQ(error_of([] { parse_text_vectors("a 1 nan\n", "v.txt"); }),
            "v.txt:1: value 2 'nan' is not a finite number");
  EXPECT_EQ(error_of([] { parse_text_vectors("a 1 x\n", "v.txt"); }),
            "v.txt:1: value 2 'x' is not a finite number");
  EXPECT_EQ(error_of([] { parse_text_vectors("", "v.txt"); }), "v.txt: no vectors");
  EXPECT_EQ(error_of([] { parse_text_vectors("a 1\na 2\n", "v.txt"); }),
            "v.txt: the word 'a' appears twice (rows 0 and 1)");
}

// The real archive, as `make test` fetches it from natasha's wheel on PyPI; the values were
// read with navec's own format (Python) from the same file.
TEST(WordVectors, ReadsNavecNewsVectors) {
  std::string path = test::navec_tar();
  ASSERT_TRUE(test::file_exists(path))
      << path
      << " is missing: run `build/bin/kdx data fetch navec --to ~/.cache/kdx` (make test does)";
  auto v = read_navec(path);
  EXPECT_EQ(v.id, "news_v1_1B_250K_300d_100q");
  EXPECT_EQ(v.size(), 250002u);
  EXPECT_EQ(v.dim, 300);
  EXPECT_EQ(v.qdim, 100);
  EXPECT_TRUE(v.lowercase);
  std::vector<float> out(300);
  auto row = v.find("Москва");
  ASSERT_TRUE(row);
  EXPECT_EQ(*row, 117686u);
  v.vector(*row, out.data());
  EXPECT_NEAR(out[0], -0.407794, 1e-6);
  EXPECT_NEAR(out[1], 0.054167, 1e-6);
  EXPECT_NEAR(out[3], 0.415854, 1e-6);
  EXPECT_EQ(v.find("<unk>"), 250000u);
}

}  // namespace
}  // namespace kdx::data
