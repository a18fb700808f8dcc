// The real RuNNE and RuREBus copies (../shared/data or $KDX_DATA_DIR): counts, readers,
// tokenizer, windows and encodings on the data the research runs on.
#include <gtest/gtest.h>

#include "tests/support/test_support.h"
#include "workers/data/encode.h"
#include "workers/data/metrics.h"
#include "workers/data/readers.h"
#include "workers/data/vocab_builder.h"

namespace kdx::data {
namespace {

class RealData : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::shared_data_dir();
    ASSERT_FALSE(root_.empty())
        << "the real data sets are missing: set KDX_DATA_DIR or run kdx data fetch";
  }
  long entities(const std::vector<Document>& docs) {
    long n = 0;
    for (auto& d : docs) n += static_cast<long>(d.entities.size());
    return n;
  }
  std::string root_;
};

TEST_F(RealData, RunneCounts) {
  auto train = read_dataset("runne", {root_ + "/runne/train.jsonl"});
  EXPECT_EQ(train.size(), 461u);
  EXPECT_EQ(entities(train), 27743);
  auto test = read_dataset("runne",
                           {root_ + "/runne/test.jsonl", root_ + "/runne/test_with_answers.jsonl"});
  EXPECT_EQ(test.size(), 93u);
  EXPECT_EQ(entities(test), 5843);
  EXPECT_EQ(types_of(train).size(), 29u);
}

TEST_F(RealData, RurebusCounts) {
  auto train = read_dataset(
      "rurebus", {root_ + "/rurebus/train_part_1.zip", root_ + "/rurebus/train_part_2.zip",
                  root_ + "/rurebus/train_part_3.zip"});
  EXPECT_EQ(train.size(), 188u);
  EXPECT_EQ(entities(train), 54388);
  EXPECT_EQ(types_of(train).size(), 8u);
  auto test = read_dataset("rurebus", {root_ + "/rurebus/test_ner_only.zip"});
  EXPECT_EQ(test.size(), 544u);
  EXPECT_GT(entities(test), 0);
}

TEST_F(RealData, EncodingRoundTripAndWindowsOnRunne) {
  auto train = read_dataset("runne", {root_ + "/runne/train.jsonl"});
  Tokenizer tok(build_vocab(train, 8000, {}), {});
  auto types = types_of(train);
  auto per_type = round_trip(train, tok, make_scheme("per_type_bio", types));
  auto flat = round_trip(train, tok, make_scheme("flat_bio", types));
  EXPECT_EQ(per_type.gold, 27743);
  // Per-type BIO keeps every nesting of different types; it loses same-type nesting only.
  EXPECT_GT(per_type.fraction(), 0.9);
  EXPECT_GT(per_type.survived, flat.survived);
  auto data = encode_dataset(train, tok, make_scheme("per_type_bio", types), 128);
  long covered = 0;
  for (auto& ex : data.examples) {
    EXPECT_LE(ex.ids.size(), 128u);
    covered += ex.window.count;
  }
  EXPECT_EQ(covered, data.total_tokens());
  // A perfect tagger decodes to what survives the round trip, and the official scorer agrees.
  std::vector<std::vector<int>> perfect;
  for (auto& ex : data.examples) perfect.push_back(ex.tags);
  auto pred = decode_predictions(data, perfect);
  auto s = score_runne(train, pred, types);
  // Only spans that do not survive encoding (same-type nesting, boundaries inside a token) can
  // differ.
  EXPECT_LE(s.mention.fp, per_type.gold - per_type.survived);
  EXPECT_GE(s.mention.tp,
            per_type.survived - 16);  // train.jsonl repeats 16 entities; sets count them once
  EXPECT_NEAR(s.mention.recall, static_cast<double>(s.mention.tp) / (s.mention.tp + s.mention.fn),
              1e-12);
  EXPECT_GT(s.mention.f1, 0.9);
}

}  // namespace
}  // namespace kdx::data
