// kdx eval / kdx data through the real binary, on the real data sets.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/test_support.h"

namespace kdx {
namespace {

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::shared_data_dir();
    ASSERT_FALSE(root_.empty());
  }
  test::CommandResult kdx(std::vector<std::string> args) {
    args.insert(args.begin(), KDX_BIN);
    return test::run_command(args, dir_.path());
  }
  std::string root_;
  test::TempDir dir_;
};

TEST_F(CommandsTest, EvalRunneMatchesTheDefinition) {
  // Predictions = gold minus every third entity, plus one wrong-type copy of every fifth.
  std::istringstream gold(test::slurp(root_ + "/runne/test_with_answers.jsonl"));
  std::string line, pred;
  long tp = 0, fp = 0, fn = 0;
  std::map<std::string, std::array<long, 3>> per_type;  // tp, fp, fn
  while (std::getline(gold, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    std::set<std::tuple<int, int, std::string>> g, p;
    for (auto& e : j["ners"])
      g.insert(std::make_tuple(e[0].get<int>(), e[1].get<int>(), e[2].get<std::string>()));
    int i = 0;
    auto out = nlohmann::json::array();
    for (auto& [s, e, t] : g) {
      if (i % 3 != 0) {
        out.push_back(nlohmann::json::array({s, e, t}));
        p.insert(std::make_tuple(s, e, t));
      }
      if (i % 5 == 0) {
        std::string other = t == "PERSON" ? "CITY" : "PERSON";
        if (!g.count(std::make_tuple(s, e, other))) {
          out.push_back(nlohmann::json::array({s, e, other}));
          p.insert(std::make_tuple(s, e, other));
        }
      }
      ++i;
    }
    for (auto& x : g) (p.count(x) ? tp : fn)++, per_type[std::get<2>(x)][p.count(x) ? 0 : 2]++;
    for (auto& x : p)
      if (!g.count(x)) ++fp, per_type[std::get<2>(x)][1]++;
    pred += nlohmann::json{{"id", j["id"]}, {"ners", out}}.dump() + "\n";
  }
  dir_.write("pred.jsonl", pred);
  auto r = kdx({"eval", "--format", "runne", "--gold", root_ + "/runne/test_with_answers.jsonl",
                "--pred", dir_.file("pred.jsonl"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto s = nlohmann::json::parse(r.out);
  double R = static_cast<double>(tp) / (tp + fn), P = static_cast<double>(tp) / (tp + fp);
  EXPECT_NEAR(s["mention"]["recall"].get<double>(), R, 1e-9);
  EXPECT_NEAR(s["mention"]["precision"].get<double>(), P, 1e-9);
  EXPECT_NEAR(s["mention"]["f1"].get<double>(), 2 * R * P / (R + P), 1e-9);
  double sum = 0, few = 0;
  int n = 0;
  for (auto& [t, c] : per_type) {
    double r = c[0] ? double(c[0]) / (c[0] + c[2]) : 0, p = c[0] ? double(c[0]) / (c[0] + c[1]) : 0;
    double f = p == 0 ? 0 : 2 * r * p / (r + p);
    if (t == "DISEASE" || t == "PENALTY" || t == "WORK_OF_ART")
      few += f;
    else if (c[0] + c[2] > 0)
      sum += f, ++n;
  }
  EXPECT_NEAR(s["macro_f1"].get<double>(), sum / n, 1e-9);
  EXPECT_NEAR(s["macro_f1_few_shot"].get<double>(), few / 3, 1e-9);

  auto text = kdx({"eval", "--format", "runne", "--gold", root_ + "/runne/test_with_answers.jsonl",
                   "--pred", root_ + "/runne/test_with_answers.jsonl"});
  EXPECT_NE(text.out.find("Mention F1: 100.00%\n"), std::string::npos) << text.out;
}

TEST_F(CommandsTest, EvalRejectsBadPredictions) {
  dir_.write("short.jsonl", "{\"id\": 0, \"ners\": []}\n");
  auto r = kdx({"eval", "--format", "runne", "--gold", root_ + "/runne/test_with_answers.jsonl",
                "--pred", dir_.file("short.jsonl")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "kdx: error: number of lines in ground truth is not equal to number of lines in "
            "solution passed: 93 != 1\n");
}

TEST_F(CommandsTest, EvalRurebusOnItself) {
  auto r = kdx({"eval", "--format", "rurebus", "--gold", root_ + "/rurebus/test_ner_only.zip",
                "--pred", root_ + "/rurebus/test_ner_only.zip", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["mention"]["f1"], 1.0);
  EXPECT_EQ(s["per_type"].size(), 8u);
}

TEST_F(CommandsTest, DataRoundtripTable) {
  auto r = kdx({"data", "roundtrip", "--format", "runne", root_ + "/runne/train.jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("runne: 461 documents, 27743 entities, 29 types"), std::string::npos)
      << r.out;
  // One row per encoding, each over every gold entity; BILOU marks the same spans as BIO.
  std::map<std::string, std::string> rows;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) rows[line.substr(0, line.find(' '))] = line;
  for (auto scheme : {"per_type_bio", "per_type_bilou", "flat_bio"})
    EXPECT_NE(rows[scheme].find(" 27743 "), std::string::npos) << scheme << "\n" << r.out;
  EXPECT_EQ(rows["per_type_bilou"].substr(rows["per_type_bilou"].find(" 27743 ")),
            rows["per_type_bio"].substr(rows["per_type_bio"].find(" 27743 ")))
      << r.out;
}

TEST_F(CommandsTest, DataFetchFromMirror) {
  std::string m = "mirror/dialogue-evaluation/RuREBus/raw/HEAD/";
  for (auto [remote, local] : std::vector<std::pair<std::string, std::string>>{
           {"train_data/train_part_1.zip", "train_part_1.zip"},
           {"train_data/train_part_2.zip", "train_part_2.zip"},
           {"train_data/train_part_3.zip", "train_part_3.zip"},
           {"test_data/test.zip", "test.zip"},
           {"test_data/test_ner_only.zip", "test_ner_only.zip"},
           {"test_data/test_full.zip", "test_full.zip"}})
    dir_.write(m + remote, test::slurp(root_ + "/rurebus/" + local));
  auto r = kdx({"data", "fetch", "rurebus", "--to", "fetched", "--base-url",
                "file://" + dir_.file("mirror")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fetched/rurebus/test_full.zip: downloaded, checksum ok"), std::string::npos)
      << r.out;
  auto bad = kdx({"data", "fetch", "imdb"});
  EXPECT_NE(bad.exit_code, 0);
}

}  // namespace
}  // namespace kdx
