#include "workers/data/word_table.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "tests/workers/data/navec_fixture.h"

namespace kdx::data {
namespace {

using test::error_of;

Vocab vocab_of(std::vector<std::string> tokens) {
  Vocab v;
  for (auto t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) v.add(t);
  for (auto& t : tokens) v.add(t);
  return v;
}

TEST(WordTable, EveryPieceGetsItsWordsRowAndSpecialsGetRowZero) {
  // "Ёжик" splits into two pieces; both take the row of "ежик" (navec's lower-case, е spelling).
  Tokenizer tok(vocab_of({"Ёж", "##ик", "и", "кот", "."}), {});
  auto tar = test::navec_archive({"ежик", "кот", "<unk>"}, 4, 2, {{0, 1}, {2, 3}, {1, 1}});
  auto vectors = parse_navec(tar, "t.tar");
  std::vector<Document> docs = {{"d1", decode_utf8("Ёжик и кот.", "t"), {}}};
  TagScheme scheme = make_scheme("per_type_bio", {"PER"});
  auto enc = encode_dataset(docs, tok, scheme, 32);
  ASSERT_EQ(enc.docs[0].words, (std::vector<std::string>{"Ёжик", "Ёжик", "и", "кот", "."}));
  auto table = build_word_table(vectors, {&enc});
  ASSERT_EQ(table.words, (std::vector<std::string>{"ежик", "кот"}));
  EXPECT_EQ(table.size(), 3);
  ASSERT_EQ(table.vectors.size(), 8u);
  // Row 1 is navec's row 0: centroids 0 and 1 of its two codebooks, two values each.
  EXPECT_FLOAT_EQ(table.vectors[0], test::navec_code(0, 0, 0));
  EXPECT_FLOAT_EQ(table.vectors[3], test::navec_code(1, 1, 1));
  auto cov = assign_word_rows(enc, table);
  EXPECT_EQ(cov.tokens, 5);
  EXPECT_EQ(cov.found, 3);
  // [CLS] Ёж ##ик и кот . [SEP]
  EXPECT_EQ(enc.examples[0].words, (std::vector<int>{0, 1, 1, 0, 2, 0, 0}));
  auto b = make_batch(enc, {0}, tok.vocab().pad());
  EXPECT_EQ(b.words, (std::vector<int64_t>{0, 1, 1, 0, 2, 0, 0}));
}

TEST(WordTable, WordListRoundTripsAndBadListsAreNamed) {
  test::TempDir tmp;
  WordTable t;
  t.dim = 2;
  t.words = {"кот", "ежик"};
  write_word_list(t, tmp.file("vectors.txt"));
  auto back = read_word_list(tmp.file("vectors.txt"), 2);
  EXPECT_EQ(back.words, t.words);
  EXPECT_EQ(back.row_of("Кот"), 1);
  EXPECT_EQ(back.row_of("ёжик"), 2);
  EXPECT_EQ(back.row_of("пес"), 0);
  tmp.write("bad1.txt", "hello\n");
  EXPECT_EQ(error_of([&] { read_word_list(tmp.file("bad1.txt"), 2); }),
            tmp.file("bad1.txt") + ":1: not a kdx word list (expected \"kdx-word-list 1\")");
  tmp.write("bad2.txt", "kdx-word-list 1\nкот\nкот\n");
  EXPECT_EQ(error_of([&] { read_word_list(tmp.file("bad2.txt"), 2); }),
            tmp.file("bad2.txt") + ":3: word 'кот' listed twice");
}

}  // namespace
}  // namespace kdx::data
