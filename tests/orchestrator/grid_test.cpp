#include "orchestrator/grid.h"

#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "orchestrator/spec.h"

namespace kdx {
namespace {

Spec spec_of(const std::string& students) {
  SpecOptions o;
  o.check_data_files = false;
  return parse_spec_text(
      "experiment: g\ndatasets: [{name: d, format: runne, train: a, test: b}]\nteacher: "
      "{}\nstudents:\n" +
          students,
      "g.yaml", o);
}

TEST(Grid, ProductCountsAndOrder) {
  auto s = spec_of("  grid: {arch: [lstm, sru, srupp], hidden: [32, 64], seed: [1, 2, 3]}\n");
  auto pts = expand_grid(s.students, s.file);
  ASSERT_EQ(pts.size(), 18u);
  EXPECT_EQ(pts[0], (nlohmann::json{{"arch", "lstm"}, {"hidden", 32}, {"seed", 1}}));
  EXPECT_EQ(pts[1],
            (nlohmann::json{{"arch", "lstm"}, {"hidden", 32}, {"seed", 2}}));  // last axis fastest
  EXPECT_EQ(pts[17], (nlohmann::json{{"arch", "srupp"}, {"hidden", 64}, {"seed", 3}}));
}

TEST(Grid, ZipAdvancesTogether) {
  auto s =
      spec_of("  grid: {arch: [lstm, sru]}\n  zip: {hidden: [32, 64, 128], layers: [1, 2, 3]}\n");
  auto pts = expand_grid(s.students, s.file);
  ASSERT_EQ(pts.size(), 6u);
  for (auto& p : pts) EXPECT_EQ(p["hidden"].get<int>(), 32 << (p["layers"].get<int>() - 1));
}

TEST(Grid, ExcludeAndInclude) {
  auto s = spec_of(
      "  fixed: {epochs: 4}\n"
      "  grid: {arch: [lstm, sru], hidden: [32, 64], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n"
      "  exclude: [{arch: sru, hidden: [32, 64], loss: {kd_weight: 0}}, {arch: lstm, hidden: 64}]\n"
      "  include: [{arch: srupp, hidden: 256}]\n");
  auto pts = expand_grid(s.students, s.file);
  // 8 points; exclude sru+kd0 (2) and lstm/64 (2); add 1.
  ASSERT_EQ(pts.size(), 5u);
  for (auto& p : pts) {
    EXPECT_EQ(p["epochs"], 4);  // fixed merges into every point, included ones too
    EXPECT_FALSE(p["arch"] == "sru" && p["loss"]["kd_weight"] == 0);
    EXPECT_FALSE(p["arch"] == "lstm" && p["hidden"] == 64);
  }
  EXPECT_EQ(pts.back()["arch"], "srupp");
}

TEST(Grid, ExcludeMatchesListValuedParametersWhole) {
  // conv.kernels is itself a list: [1, 3, 5] names those kernels, not "1 or 3 or 5".
  auto s = spec_of(
      "  grid:\n"
      "    arch: [lstm, sru]\n"
      "    conv: [{channels: []}, {kernels: [1, 3, 5], channels: [96, 96]}, {kernels: [3], "
      "channels: [64]}]\n"
      "  exclude: [{arch: lstm, conv: {kernels: [1, 3, 5], channels: [96, 96]}}, {arch: sru, "
      "conv: {kernels: [3]}}]\n");
  auto pts = expand_grid(s.students, s.file);
  // 6 points; the LSTM's [1, 3, 5] front-end and the SRU's [3] one are dropped.
  ASSERT_EQ(pts.size(), 4u);
  for (auto& p : pts) {
    EXPECT_FALSE(p["arch"] == "lstm" && p["conv"]["channels"].size() == 2u) << p.dump();
    EXPECT_FALSE(p["arch"] == "sru" && p["conv"].contains("kernels") &&
                 p["conv"]["kernels"].size() == 1u)
        << p.dump();
  }
}

TEST(Grid, FixedLossMergesWithGridLoss) {
  auto s = spec_of(
      "  fixed: {loss: {ce_weight: 0.5}}\n  grid: {loss: [{kd_weight: 0}, {kd_weight: 2}]}\n");
  auto pts = expand_grid(s.students, s.file);
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[1]["loss"], (nlohmann::json{{"ce_weight", 0.5}, {"kd_weight", 2}}));
}

TEST(Grid, EverythingExcludedIsAnError) {
  auto s = spec_of("  grid: {arch: [lstm]}\n  exclude: [{arch: lstm}]\n");
  try {
    expand_grid(s.students, s.file);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "g.yaml: students: the grid has no runs (all 1 points are excluded by students.exclude)");
  }
}

TEST(Grid, RandomIsReproducibleAndInRange) {
  auto s = spec_of(
      "  random:\n    samples: 50\n    seed: 42\n    params:\n"
      "      lr: {loguniform: [1.0e-4, 1.0e-2]}\n      dropout: {uniform: [0.0, 0.5]}\n"
      "      layers: {int: [1, 3]}\n      arch: {choice: [lstm, sru]}\n");
  auto a = expand_grid(s.students, s.file);
  auto b = expand_grid(s.students, s.file);
  ASSERT_EQ(a.size(), 50u);
  EXPECT_EQ(a, b);
  std::set<int> layers;
  std::set<std::string> archs;
  for (auto& p : a) {
    EXPECT_GE(p["lr"].get<double>(), 1e-4);
    EXPECT_LT(p["lr"].get<double>(), 1e-2);
    EXPECT_GE(p["dropout"].get<double>(), 0.0);
    EXPECT_LT(p["dropout"].get<double>(), 0.5);
    layers.insert(p["layers"].get<int>());
    archs.insert(p["arch"].get<std::string>());
  }
  EXPECT_EQ(layers, (std::set<int>{1, 2, 3}));
  EXPECT_EQ(archs.size(), 2u);
  s.students.random.seed = 43;
  EXPECT_NE(expand_grid(s.students, s.file), a);
}

TEST(Grid, RandomCrossesWithGrid) {
  auto s = spec_of(
      "  grid: {arch: [lstm, sru]}\n  random: {samples: 4, params: {lr: {uniform: [0.001, "
      "0.002]}}}\n");
  EXPECT_EQ(expand_grid(s.students, s.file).size(), 8u);
}

}  // namespace
}  // namespace kdx
