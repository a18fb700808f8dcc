#include "workers/data/metrics.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace kdx::data {
namespace {

const std::vector<std::string> kTypes = {"A", "B", "C", "DISEASE", "PENALTY", "WORK_OF_ART"};

std::vector<Document> gold() {
  return {{"1", {}, {{0, 5, "A"}, {6, 9, "B"}, {10, 12, "DISEASE"}}}, {"2", {}, {{0, 3, "A"}}}};
}

TEST(Metrics, RunneHandComputed) {
  std::vector<Document> pred = {
      {"1", {}, {{0, 5, "A"}, {6, 8, "B"}, {10, 12, "DISEASE"}, {13, 15, "C"}}},
      {"2", {}, {{0, 3, "A"}, {0, 3, "A"}}}};  // duplicates count once
  auto s = score_runne(gold(), pred, kTypes);
  EXPECT_EQ(s.mention.tp, 3);
  EXPECT_EQ(s.mention.fp, 2);
  EXPECT_EQ(s.mention.fn, 1);
  EXPECT_NEAR(s.mention.recall, 0.75, 1e-12);
  EXPECT_NEAR(s.mention.precision, 0.6, 1e-12);
  EXPECT_NEAR(s.mention.f1, 2 * 0.75 * 0.6 / 1.35, 1e-12);
  // Macro over types with gold, few-shot excluded: A = 1, B = 0 (C has no gold).
  EXPECT_NEAR(s.macro_f1, 0.5, 1e-12);
  // Few-shot: DISEASE = 1, PENALTY = WORK_OF_ART = 0, always divided by 3.
  EXPECT_NEAR(s.macro_f1_few_shot, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(s.per_type["C"].fp, 1);
  EXPECT_EQ(s.per_type["C"].f1, 0.0);
}

TEST(Metrics, EmptyPrediction) {
  std::vector<Document> pred = {{"1", {}, {}}, {"2", {}, {}}};
  auto s = score_runne(gold(), pred, kTypes);
  EXPECT_EQ(s.mention.f1, 0.0);
  EXPECT_EQ(s.mention.precision, 0.0);
  EXPECT_EQ(s.macro_f1, 0.0);
  EXPECT_EQ(s.macro_f1_few_shot, 0.0);
}

TEST(Metrics, RunneRejectsWhatTheOfficialScorerRejects) {
  auto error = [](const std::vector<Document>& pred) {
    try {
      score_runne(gold(), pred, kTypes);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(none)");
  };
  EXPECT_EQ(error({{"1", {}, {{0, 1, "Z"}}}, {"2", {}, {}}}),
            "Z is unknown type name from line 1 (document id 1)");
  EXPECT_EQ(
      error({{"1", {}, {}}}),
      "number of lines in ground truth is not equal to number of lines in solution passed: 2 != 1");
  EXPECT_EQ(error({{"1", {}, {}}, {"3", {}, {}}}), "ids don't match. Difference: {2, 3}");
}

TEST(Metrics, ExactSpansPerType) {
  std::vector<Document> g = {{"d", {}, {{0, 4, "ACT"}, {5, 9, "BIN"}, {10, 12, "BIN"}}}};
  std::vector<Document> p = {{"d", {}, {{0, 4, "ACT"}, {5, 9, "BIN"}, {10, 13, "BIN"}}}};
  auto s = score_exact(g, p, {"ACT", "BIN"});
  EXPECT_NEAR(s.mention.f1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(s.per_type["ACT"].f1, 1.0, 1e-12);
  EXPECT_NEAR(s.per_type["BIN"].f1, 0.5, 1e-12);
  EXPECT_NEAR(s.macro_f1, 0.75, 1e-12);
}

}  // namespace
}  // namespace kdx::data
