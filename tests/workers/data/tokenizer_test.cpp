#include "workers/data/tokenizer.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/data/document.h"
#include "workers/data/vocab_builder.h"

namespace kdx::data {
namespace {

Vocab vocab_of(std::vector<std::string> tokens) {
  Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v.add(s);
  for (auto& t : tokens) v.add(t);
  return v;
}

std::u32string u(const std::string& s) {
  return decode_utf8(s, "test");
}

TEST(Tokenizer, WordPieceGreedyLongestMatch) {
  // The example from BERT's WordPiece documentation.
  Tokenizer t(vocab_of({"un", "##aff", "##able", "##a", "##ff"}), {});
  EXPECT_EQ(t.pieces(u("unaffable")), (std::vector<std::string>{"un", "##aff", "##able"}));
}

TEST(Tokenizer, UnknownWordsBecomeOneUnk) {
  Tokenizer t(vocab_of({"ab", "##c"}), {});
  // "abd": "ab" matches but "##d" does not, so the whole word is [UNK], as in BertTokenizer.
  EXPECT_EQ(t.pieces(u("abc abd")), (std::vector<std::string>{"ab", "##c", "[UNK]"}));
  std::string long_word(101, 'a');
  Tokenizer t2(vocab_of({"a", "##a"}), {});
  EXPECT_EQ(t2.pieces(u(long_word)), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(t2.pieces(u(std::string(100, 'a'))).size(), 100u);
}

TEST(Tokenizer, PunctuationSplitAndOffsets) {
  Tokenizer t(vocab_of({"привет", ",", "мир", "!", "«", "»"}), {});
  auto text = u("«Привет,  мир»!");
  Tokenizer lower(t.vocab(), {true, -1, true, 100});
  auto toks = lower.tokenize(text);
  ASSERT_EQ(toks.size(), 6u);
  EXPECT_EQ(lower.pieces(text), (std::vector<std::string>{"«", "привет", ",", "мир", "»", "!"}));
  EXPECT_EQ(toks[1].start, 1);
  EXPECT_EQ(toks[1].end, 7);
  EXPECT_EQ(toks[3].start, 10);
  EXPECT_EQ(toks[3].end, 13);
  // Cased: "Привет" is not in the vocabulary.
  EXPECT_EQ(t.pieces(text)[1], "[UNK]");
}

TEST(Tokenizer, LowercaseStripsAccentsLikeBertTokenizer) {
  // do_lower_case=True strips accents: ё -> е, й -> и, é -> e (NFD, drop Mn).
  Tokenizer t(vocab_of({"елка", "и", "cafe", "ёлка"}), {true, -1, true, 100});
  EXPECT_EQ(t.pieces(u("Ёлка Й Café")), (std::vector<std::string>{"елка", "и", "cafe"}));
  // strip_accents=False keeps them even when lower-casing.
  Tokenizer keep(vocab_of({"ёлка"}), {true, 0, true, 100});
  EXPECT_EQ(keep.pieces(u("Ёлка")), (std::vector<std::string>{"ёлка"}));
  // Offsets still point at the original characters.
  auto toks = t.tokenize(u("Ёлка Й"));
  EXPECT_EQ(toks[0].start, 0);
  EXPECT_EQ(toks[0].end, 4);
  EXPECT_EQ(toks[1].start, 5);
  EXPECT_EQ(toks[1].end, 6);
}

TEST(Tokenizer, CjkControlAndWhitespace) {
  Tokenizer t(vocab_of({"中", "文", "ab"}), {});
  EXPECT_EQ(t.pieces(u("中文")), (std::vector<std::string>{"中", "文"}));
  EXPECT_EQ(t.pieces(u(std::string("a\x01") + "b")),
            (std::vector<std::string>{"ab"}));          // control char dropped
  EXPECT_EQ(t.pieces(u("ab\u00a0ab\tab")).size(), 3u);  // no-break space is whitespace (Zs)
}

TEST(Tokenizer, ContinuationOffsetsSplitTheWord) {
  Tokenizer t(vocab_of({"моск", "##ва"}), {});
  auto toks = t.tokenize(u("  москва"));
  ASSERT_EQ(toks.size(), 2u);
  EXPECT_EQ(toks[0].start, 2);
  EXPECT_EQ(toks[0].end, 6);
  EXPECT_EQ(toks[1].start, 6);
  EXPECT_EQ(toks[1].end, 8);
}

TEST(Vocab, LoadRequiresSpecialTokens) {
  test::TempDir dir;
  auto path = dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\nhello\n");
  try {
    load_vocab(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": vocabulary has no [SEP] token");
  }
}

TEST(VocabBuilder, CoversCorpusWithoutUnk) {
  std::vector<Document> corpus = {{"1", u("Москва — столица России. Москва большая."), {}},
                                  {"2", u("Санкт-Петербург, Россия!"), {}}};
  auto v = build_vocab(corpus, 200, {});
  EXPECT_LE(v.size(), 200u);
  EXPECT_EQ(v.tokens[0], "[PAD]");
  Tokenizer t(v, {});
  for (auto& d : corpus)
    for (auto& p : t.pieces(d.text)) EXPECT_NE(p, "[UNK]");
  EXPECT_GE(v.id("Москва"), 0);  // the most frequent word is whole
  test::TempDir dir;
  save_vocab(v, dir.file("vocab.txt"));
  EXPECT_EQ(load_vocab(dir.file("vocab.txt")).tokens, v.tokens);
}

}  // namespace
}  // namespace kdx::data

namespace kdx::data {
namespace {

// Differences from Hugging Face's BertTokenizer that a comparison on real text found.
TEST(TokenizerLikeHuggingFace, LineAndParagraphSeparatorsSplitWords) {
  Tokenizer t(vocab_of({"мир", "труд"}), {});
  EXPECT_EQ(t.pieces(u("мир\u2028труд\u2029мир")),
            (std::vector<std::string>{"мир", "труд", "мир"}));
}

TEST(TokenizerLikeHuggingFace, SpecialTokensInTheTextStayWhole) {
  Tokenizer t(vocab_of({"мир", "[", "]", "cls", "mask"}), {true, -1, true, 100});
  auto text = u("мир [CLS]мир[MASK] [cls]");
  auto toks = t.tokenize(text);
  EXPECT_EQ(t.pieces(text),
            (std::vector<std::string>{"мир", "[CLS]", "мир", "[MASK]", "[", "cls", "]"}));
  ASSERT_EQ(toks.size(), 7u);
  EXPECT_EQ(toks[1].id, t.vocab().cls());
  EXPECT_EQ(toks[1].start, 4);
  EXPECT_EQ(toks[1].end, 9);
  EXPECT_EQ(toks[3].start, 12);
  EXPECT_EQ(toks[3].end, 18);
}

TEST(TokenizerLikeHuggingFace, DuplicateVocabularyLinesMapToTheLastLine) {
  test::TempDir dir;
  auto path = dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nмир\n##а\nмир\n");
  auto v = load_vocab(path);
  EXPECT_EQ(v.size(), 7u);
  EXPECT_EQ(v.id("мир"), 6);
}

// A stress mark (U+0301) is stripped when lower-casing; each piece keeps its own span.
TEST(TokenizerLikeHuggingFace, PiecesKeepTheirOwnSpansWhenNormalisationChangesLength) {
  Tokenizer t(vocab_of({"моло", "##ко"}), {true, -1, true, 100});
  auto text = u("Молоко\u0301 есть");  // "Молоко́": 7 code points, 6 after normalisation
  auto toks = t.tokenize(text);
  ASSERT_GE(toks.size(), 2u);
  EXPECT_EQ(t.vocab().tokens[static_cast<size_t>(toks[0].id)], "моло");
  EXPECT_EQ(toks[0].start, 0);
  EXPECT_EQ(toks[0].end, 4);
  EXPECT_EQ(toks[1].start, 4);
  EXPECT_EQ(toks[1].end, 6);  // the stripped mark belongs to no piece
}

}  // namespace
}  // namespace kdx::data
