#include "workers/data/tagging.h"

#include <gtest/gtest.h>

#include "workers/data/document.h"
#include "workers/data/encode.h"
#include "workers/data/windows.h"

namespace kdx::data {
namespace {

// Tokens at fixed spans: "Ким Чен Нам , лидер КНДР ." style, one token per word.
std::vector<Token> tokens_at(std::vector<std::pair<int, int>> spans) {
  std::vector<Token> t;
  for (auto [s, e] : spans) t.push_back({5, s, e});
  return t;
}

TEST(Tagging, PerTypeBioKeepsNestingOfDifferentTypes) {
  auto scheme = make_scheme("per_type_bio", {"COUNTRY", "ORGANIZATION", "PERSON"});
  auto toks = tokens_at({{0, 7}, {8, 16}});  // "Полиция Малайзии"
  std::vector<Entity> gold = {{0, 16, "ORGANIZATION"}, {8, 16, "COUNTRY"}};
  auto tags = encode_tags(scheme, toks, gold);
  EXPECT_EQ(tags, (std::vector<int>{0, 1, 0, 1, 2, 0}));
  EXPECT_EQ(decode_tags(scheme, toks, tags),
            (std::vector<Entity>{{0, 16, "ORGANIZATION"}, {8, 16, "COUNTRY"}}));
}

TEST(Tagging, SameTypeNestingKeepsTheOuter) {
  auto scheme = make_scheme("per_type_bio", {"PERSON"});
  auto toks = tokens_at({{0, 3}, {4, 7}, {8, 11}});
  auto tags = encode_tags(scheme, toks, {{4, 7, "PERSON"}, {0, 11, "PERSON"}});
  EXPECT_EQ(decode_tags(scheme, toks, tags), (std::vector<Entity>{{0, 11, "PERSON"}}));
}

TEST(Tagging, FlatKeepsOutermostAndAdjacentEntitiesStaySeparate) {
  auto scheme = make_scheme("flat_bio", {"A", "B"});
  auto toks = tokens_at({{0, 1}, {2, 3}, {4, 5}, {6, 7}});
  auto tags = encode_tags(scheme, toks, {{0, 3, "A"}, {2, 3, "B"}, {4, 5, "A"}, {6, 7, "A"}});
  // O=0, B-A=1, I-A=2, B-B=3, I-B=4
  EXPECT_EQ(tags, (std::vector<int>{1, 2, 1, 1}));
  EXPECT_EQ(decode_tags(scheme, toks, tags),
            (std::vector<Entity>{{0, 3, "A"}, {4, 5, "A"}, {6, 7, "A"}}));
}

TEST(Tagging, LenientDecodingOfIWithoutB) {
  auto scheme = make_scheme("flat_bio", {"A", "B"});
  auto toks = tokens_at({{0, 1}, {2, 3}, {4, 5}});
  EXPECT_EQ(decode_tags(scheme, toks, {2, 2, 4}), (std::vector<Entity>{{0, 3, "A"}, {4, 5, "B"}}));
}

TEST(Windows, CutAtSentenceEndsAndCoverEveryToken) {
  Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "w", "."}) v.add(s);
  // 3 sentences of 3 tokens ("w w ."), window of 8 = 6 document tokens.
  std::vector<Token> toks;
  std::u32string text;
  for (int s = 0; s < 3; ++s)
    for (int k = 0; k < 3; ++k) {
      int pos = static_cast<int>(text.size());
      text += k == 2 ? U"." : U"w";
      text += U" ";
      toks.push_back({k == 2 ? 5 : 4, pos, pos + 1});
    }
  auto w = make_windows(toks, text, v, 8);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].first, 0);
  EXPECT_EQ(w[0].count, 6);
  EXPECT_EQ(w[1].first, 6);
  EXPECT_EQ(w[1].count, 3);
  // A sentence longer than the window is cut hard.
  // Room for 2: "w w" is cut hard, then "." ends a window of its own at each sentence end.
  auto hard = make_windows(toks, text, v, 4);
  ASSERT_EQ(hard.size(), 6u);
  EXPECT_EQ(hard[1].first, 2);
  EXPECT_EQ(hard[1].count, 1);
}

TEST(Encode, EntityCrossingWindowsSurvivesDecoding) {
  Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d"}) v.add(s);
  Tokenizer tok(v, {});
  Document d{"7", decode_utf8("a b c d a b", "t"), {{2, 7, "X"}}};  // "b c d" across the cut
  auto scheme = make_scheme("per_type_bio", {"X"});
  auto data = encode_dataset({d}, tok, scheme, 4);  // 2 tokens per window
  ASSERT_EQ(data.examples.size(), 3u);
  EXPECT_EQ(data.examples[0].ids, (std::vector<int>{2, 4, 5, 3}));
  EXPECT_EQ(data.examples[0].tags, (std::vector<int>{kIgnoreTag, 0, 1, kIgnoreTag}));
  std::vector<std::vector<int>> predicted;
  for (auto& ex : data.examples) predicted.push_back(ex.tags);  // a perfect model
  auto docs = decode_predictions(data, predicted);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].id, "7");
  EXPECT_EQ(docs[0].entities, (std::vector<Entity>{{2, 7, "X"}}));
  auto batch = make_batch(data, {0, 2}, v.pad());
  EXPECT_EQ(batch.len, 4);
  EXPECT_EQ(batch.ids, (std::vector<int64_t>{2, 4, 5, 3, 2, 4, 5, 3}));
  EXPECT_EQ(batch.mask, (std::vector<int64_t>(8, 1)));
}

}  // namespace
}  // namespace kdx::data
