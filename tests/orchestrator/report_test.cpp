// kdx report from a registry filled with known values: exact cells, Pareto membership, KD
// gain, mean ± std over seeds; every format parses back.
#include "orchestrator/report.h"

#include <gtest/gtest.h>

#include <sstream>

#include "common/error.h"
#include "orchestrator/report_render.h"
#include "orchestrator/run_state.h"
#include "orchestrator/svg_plot.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

class ReportTest : public ::testing::Test {
 protected:
  // A run with the given params and metrics, COMPLETED with one attempt of `seconds` on `cpus`.
  void add(const std::string& id, const std::string& stage, nlohmann::json params,
           nlohmann::json metrics, double seconds = 3600, int cpus = 2, int gpus = 0) {
    RunRecord r;
    r.id = id;
    r.experiment = "e";
    r.stage = stage;
    r.dataset = "runne";
    // conll: its headline is the mention F1 (RuNNE's, macro F1, is tested on its own).
    r.config = {{"params", params}, {"dataset", {{"format", format_}}}};
    r.run_json = nlohmann::json::object();
    r.run_dir = dir_.file(id);
    // Learning curves: dev F1 rising, CE falling (a KD term for distilled runs).
    std::string curve;
    for (int e = 1; e <= 4; ++e) {
      nlohmann::json m = {{"epoch", e}, {"dev_f1", 0.1 * e}, {"ce", 1.0 / e}};
      if (params.contains("loss") && params["loss"]["kd_weight"] != 0) m["kd"] = 0.5 / e;
      curve += m.dump() + "\n";
    }
    dir_.write(id + "/metrics.jsonl", curve);
    r.state = state::kPending;
    r.executor = "local";
    reg_.insert_run(r);
    AttemptRecord a;
    a.run_id = id;
    a.executor = "local";
    a.state = state::kCompleted;
    a.start_time = 1000;
    a.end_time = 1000 + seconds;
    a.elapsed_s = seconds;
    a.alloc_cpus = cpus;
    a.alloc_gpus = gpus;
    reg_.add_attempt(a);
    nlohmann::json result = {{"status", "ok"}, {"metrics", metrics}};
    if (id == "c1") result["warnings"] = {"dev F1 was 0 in every epoch (4)"};
    reg_.finish_attempt(a, result);
  }
  nlohmann::json student(const std::string& arch, int hidden, double kd, int seed) {
    return {{"arch", arch},
            {"hidden", hidden},
            {"layers", 1},
            {"seed", seed},
            {"loss", {{"ce_weight", 1.0}, {"kd_weight", kd}}}};
  }
  void SetUp() override {
    reg_.upsert_experiment("e", "e.yaml", "");
    add("t", "teacher", {{"arch", "bert"}, {"hidden", 768}, {"layers", 12}, {"seed", 1}},
        {{"f1", 0.80},
         {"macro_f1", 0.70},
         {"params", 100e6},
         {"params_no_embedding", 85.5e6},
         {"size_mb", 400.0},
         {"latency_b1_ms", 100.0}},
        7200, 4, 2);
    // lstm/128: KD seeds 0.70, 0.74 (mean 0.72, std 0.0283); scratch 0.60, 0.62 (0.61). Only
    // the KD runs have params_no_embedding (the others stand for runs of an older worker).
    add("a1", "student", student("lstm", 128, 1, 1),
        {{"f1", 0.70}, {"params", 4e6}, {"params_no_embedding", 1.71e6}, {"latency_b1_ms", 5.0}});
    add("a2", "student", student("lstm", 128, 1, 2),
        {{"f1", 0.74}, {"params", 4e6}, {"params_no_embedding", 1.71e6}, {"latency_b1_ms", 5.0}});
    add("b1", "student", student("lstm", 128, 0, 1),
        {{"f1", 0.60}, {"params", 4e6}, {"latency_b1_ms", 5.0}});
    add("b2", "student", student("lstm", 128, 0, 2),
        {{"f1", 0.62}, {"params", 4e6}, {"latency_b1_ms", 5.0}});
    // sru/64 KD: smaller and faster but worse; sru/256 KD: dominated by lstm/128 KD.
    add("c1", "student", student("sru", 64, 1, 1),
        {{"f1", 0.50}, {"params", 2e6}, {"latency_b1_ms", 1.0}});
    add("d1", "student", student("sru", 256, 1, 1),
        {{"f1", 0.65}, {"params", 5e6}, {"latency_b1_ms", 6.0}});
    // A failed run is listed, not dropped.
    RunRecord f;
    f.id = "zz";
    f.experiment = "e";
    f.stage = "student";
    f.dataset = "runne";
    f.config = {{"params", student("srupp", 64, 1, 1)}};
    f.run_json = nlohmann::json::object();
    f.run_dir = "/tmp/zz";
    f.state = state::kFailed;
    f.reason = "exit code 1: boom";
    reg_.insert_run(f);
  }
  const ConfigRow& row(const DatasetReport& d, const std::string& arch, int hidden, double kd) {
    for (auto& s : d.students)
      if (s.arch == arch && s.key["hidden"] == hidden && s.kd_weight == kd) return s;
    throw Error("no row");
  }
  std::string format_ = "conll";
  test::TempDir dir_;
  Registry reg_{dir_.file("r.sqlite")};
};

TEST_F(ReportTest, AggregatesPairsAndMarksPareto) {
  auto rep = build_report(reg_, "e", {});
  ASSERT_EQ(rep.datasets.size(), 1u);
  auto& d = rep.datasets[0];
  ASSERT_TRUE(d.has_teacher);
  ASSERT_EQ(d.students.size(), 4u);
  auto& kd = row(d, "lstm", 128, 1);
  EXPECT_EQ(kd.f1.n, 2);
  EXPECT_NEAR(kd.f1.mean, 0.72, 1e-12);
  EXPECT_NEAR(kd.f1.std, 0.0282842712, 1e-9);
  EXPECT_TRUE(kd.has_scratch);
  EXPECT_NEAR(kd.scratch_f1.mean, 0.61, 1e-12);
  EXPECT_NEAR(kd.kd_gain_points, 11.0, 1e-9);
  EXPECT_NEAR(kd.compression, 25.0, 1e-12);
  EXPECT_NEAR(kd.compression_paper, 50.0, 1e-9);  // 85.5M / 1.71M, word embeddings left out
  EXPECT_EQ(row(d, "lstm", 128, 0).compression_paper, 0);  // no params_no_embedding
  EXPECT_FALSE(row(d, "lstm", 128, 0).params_no_embedding.valid());
  EXPECT_NEAR(kd.speedup, 20.0, 1e-12);
  EXPECT_NEAR(kd.retained, 90.0, 1e-9);
  EXPECT_TRUE(kd.pareto_compression);
  EXPECT_TRUE(row(d, "sru", 64, 1).pareto_compression);  // most compressed
  EXPECT_TRUE(row(d, "sru", 64, 1).pareto_latency);      // fastest
  EXPECT_FALSE(row(d, "sru", 256, 1).pareto_compression);
  EXPECT_FALSE(row(d, "lstm", 128, 0).pareto_compression);  // dominated by its KD twin
  ASSERT_EQ(rep.unfinished.size(), 1u);
  EXPECT_EQ(rep.unfinished[0].state, "FAILED");
  // Cost: 2 h x 4 CPUs x 2 GPUs for the teacher, 6 student hours x 2 CPUs.
  EXPECT_NEAR(rep.gpu_hours, 4.0, 1e-9);
  EXPECT_NEAR(rep.cpu_hours, 8.0 + 12.0, 1e-9);
}

// A pretrain stage, as the planner records it: no dataset in its config. It is costed, not
// made into a dataset section (this report once stopped on it with a JSON type error).
TEST_F(ReportTest, PretrainStageIsCostedNotTabled) {
  RunRecord p;
  p.id = "pre";
  p.experiment = "e";
  p.stage = "pretrain";
  p.config = {{"stage", "pretrain"}, {"corpus", {"runne/dev.jsonl"}}, {"params", {{"layers", 2}}}};
  p.run_json = nlohmann::json::object();
  p.run_dir = dir_.file("pre");
  p.state = state::kPending;
  p.executor = "local";
  reg_.insert_run(p);
  AttemptRecord a;
  a.run_id = "pre";
  a.executor = "local";
  a.state = state::kCompleted;
  a.start_time = 1000;
  a.end_time = a.start_time + 1800;
  a.elapsed_s = 1800;
  a.alloc_cpus = 2;
  reg_.add_attempt(a);
  reg_.finish_attempt(a, {{"status", "ok"}, {"metrics", {{"heldout_mlm_accuracy", 0.12}}}});

  auto rep = build_report(reg_, "e", {});
  ASSERT_EQ(rep.datasets.size(), 1u);
  EXPECT_EQ(rep.datasets[0].dataset, "runne");
  bool costed = false;
  for (auto& c : rep.cost) costed = costed || (c.stage == "pretrain" && c.cpu_hours == 1.0);
  EXPECT_TRUE(costed);
  EXPECT_NE(render_markdown(rep).find("| pretrain | 1 | 1 | 1.000"), std::string::npos)
      << render_markdown(rep);
}

TEST_F(ReportTest, MarkdownCells) {
  auto md = render_markdown(build_report(reg_, "e", {}));
  EXPECT_NE(md.find("| model | hidden | layers | CE/KD | params | size MB | compression | "
                    "compression (paper) | compression (trainable) | latency b=1 ms |"),
            std::string::npos)
      << md;
  EXPECT_NE(
      md.find("| lstm | 128 | 1 | 1/1 | 4.00M | - | 25.0x | 50.0x | - | 5.00 | 20.0x | 72.00 ± "
              "2.83 | - | 90.0 | 61.00 ± 1.41 | +11.00 | [-1.71, +23.71] | 2 | CL |"),
      std::string::npos)
      << md;
  // Runs without params_no_embedding (older workers): "-".
  EXPECT_NE(md.find("| lstm | 128 | 1 | 1/0 | 4.00M | - | 25.0x | - | - | 5.00 | 20.0x | 61.00 ± "),
            std::string::npos)
      << md;
  EXPECT_NE(
      md.find("| teacher (bert) | 768 | 12 | - | 100.00M | 400.0 | 1x | 1x | - | 100.00 | 1x | "
              "80.00 | 70.00 |"),
      std::string::npos)
      << md;
  auto rep = build_report(reg_, "e", {});
  rep.datasets[0].teacher.params_no_embedding = Stat{};  // a teacher from an older worker
  EXPECT_NE(render_markdown(rep).find("| teacher (bert) | 768 | 12 | - | 100.00M | 400.0 | 1x | - "
                                      "| - | 100.00 |"),
            std::string::npos);
  EXPECT_NE(md.find("| zz | student | runne | FAILED | exit code 1: boom |"), std::string::npos);
}

TEST_F(ReportTest, GroupByMergesConfigurations) {
  auto rep = build_report(reg_, "e", {"arch"});
  EXPECT_EQ(rep.datasets[0].students.size(), 2u);  // lstm (4 runs), sru (2 runs)
  for (auto& s : rep.datasets[0].students)
    if (s.arch == "lstm") {
      EXPECT_EQ(s.f1.n, 4);
    }
}

TEST_F(ReportTest, CsvParsesBackOneRowPerRun) {
  auto csv = render_csv(build_report(reg_, "e", {}));
  std::istringstream in(csv);
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.substr(0, 29), "run,experiment,stage,dataset,");
  size_t cols = std::count(header.begin(), header.end(), ',') + 1;
  int rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    EXPECT_EQ(static_cast<size_t>(std::count(line.begin(), line.end(), ',') + 1), cols) << line;
  }
  EXPECT_EQ(rows, 7);  // completed runs only; the failed one is in the unfinished list
  // Python's csv module (what pandas users meet) reads it back with the same shape.
  test::TempDir d;
  auto r = test::run_command({"/usr/bin/python3", "-c",
                              "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); "
                              "print(len(rows), rows[1]['metric.f1'], rows[1]['loss.kd_weight'])",
                              d.write("r.csv", csv)});
  EXPECT_EQ(r.out, "7 0.7 1.0\n") << r.err;
}

TEST_F(ReportTest, HtmlIsWellFormedAndLatexBalanced) {
  auto rep = build_report(reg_, "e", {});
  auto html = render_html(rep);
  test::TempDir d;
  // Well-formed: Python's XML parser accepts the page with its inline SVG.
  auto r = test::run_command({"/usr/bin/python3", "-c",
                              "import sys, xml.dom.minidom as m; "
                              "t=open(sys.argv[1]).read().replace('<!DOCTYPE html>',''); "
                              "doc=m.parseString(t); print(len(doc.getElementsByTagName('svg')), "
                              "len(doc.getElementsByTagName('tr')))",
                              d.write("r.html", html)});
  // The F1 plots and three learning-curve groups (teacher, lstm, sru); 6 rows in the main
  // table, 2 in the unfinished one.
  EXPECT_EQ(r.out, "4 8\n") << r.err;
  auto tex = render_latex(rep);
  int depth = 0;
  for (char c : tex) {
    depth += c == '{';
    depth -= c == '}';
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);
  EXPECT_NE(tex.find("\\begin{tabular}"), std::string::npos);
  EXPECT_NE(tex.find("72.00 $\\pm$ 2.83"), std::string::npos) << tex;
  auto j = nlohmann::json::parse(render_json(rep));
  EXPECT_EQ(j["datasets"][0]["students"].size(), 4u);
  int distilled_lstm = 0;
  for (auto& s : j["datasets"][0]["students"])
    if (s["arch"] == "lstm" && s["config"]["loss.kd_weight"] == 1) {
      ++distilled_lstm;
      EXPECT_NEAR(s["compression_paper"].get<double>(), 50.0, 1e-9);
      EXPECT_NEAR(s["params_no_embedding"]["mean"].get<double>(), 1.71e6, 1e-3);
    }
  EXPECT_EQ(distilled_lstm, 1);
  EXPECT_NEAR(j["datasets"][0]["teacher"]["params_no_embedding"]["mean"].get<double>(), 85.5e6,
              1e-3);
}

// The plot as a person sees it: headless Chromium renders the SVG, the screenshot is not blank.
TEST_F(ReportTest, SvgRendersInHeadlessChromium) {
  auto rep = build_report(reg_, "e", {});
  test::TempDir d;
  for (auto [name, svg_text, width] : {std::tuple{"plot", render_svg(rep.datasets[0]), 1120},
                                       {"curves", render_curves_svg(rep, "runne", "lstm"), 1020}}) {
    std::string svg = d.write(std::string(name) + ".svg", svg_text);
    std::string png = d.file(std::string(name) + ".png");
    auto r = test::run_command({"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-quic", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--user-data-dir=" + d.file("profile"),
                                "--window-size=" + std::to_string(width) + ",360",
                                "--screenshot=" + png, "file://" + svg});
    ASSERT_TRUE(test::file_exists(png)) << r.out << r.err;
    auto stats =
        test::run_command({"/usr/bin/python3", KDX_SOURCE_DIR "/tests/programs/png_stats.py", png});
    ASSERT_EQ(stats.exit_code, 0) << stats.err;
    int w = 0, h = 0, colours = 0, non_white = 0;
    std::istringstream(stats.out) >> w >> h >> colours >> non_white;
    EXPECT_EQ(w, width) << name;
    EXPECT_EQ(h, 360) << name;
    EXPECT_GT(colours, 10) << name << ": " << stats.out;      // axes, text, series colours
    EXPECT_GT(non_white, 4000) << name << ": " << stats.out;  // markers, lines, labels drawn
  }
}

// The KD gain's 95% interval comes from seeds paired with and without KD: lstm/128 gains
// 10 and 12 points on seeds 1 and 2 (mean 11, sd 1.41, t(1) = 12.706).
TEST_F(ReportTest, PairedSeedIntervalAndWarnings) {
  auto rep = build_report(reg_, "e", {});
  auto& kd = row(rep.datasets[0], "lstm", 128, 1);
  EXPECT_EQ(kd.gain_pairs, 2);
  EXPECT_NEAR(kd.gain_ci_lo, 11 - 12.706, 1e-6);
  EXPECT_NEAR(kd.gain_ci_hi, 11 + 12.706, 1e-6);
  EXPECT_EQ(kd.kd_label, "KD kl w=1");
  EXPECT_EQ(row(rep.datasets[0], "lstm", 128, 0).kd_label, "CE only");
  auto md = render_markdown(rep);
  EXPECT_NE(md.find("| sru (!) | 64 |"), std::string::npos) << md;
  EXPECT_NE(md.find("## Warnings\n\n(!) in a table: a run of that row finished with a warning.\n\n"
                    "- c1: dev F1 was 0 in every epoch (4)\n"),
            std::string::npos)
      << md;
}

// Rows that differ only in an LSTM's residual connections or forget-gate bias read apart.
TEST(ReportRender, ModelNamesAnLstmsResidualAndForgetBias) {
  ReportData rep;
  DatasetReport d;
  d.dataset = d.format = "runne";
  for (auto key :
       {nlohmann::json{{"hidden", 256}, {"layers", 4}},
        nlohmann::json{{"hidden", 256}, {"layers", 4}, {"residual", true}},
        nlohmann::json{{"hidden", 256}, {"layers", 4}, {"forget_bias", 1.0}},
        nlohmann::json{
            {"hidden", 256}, {"layers", 4}, {"residual", false}, {"forget_bias", 0.5}}}) {
    ConfigRow r;
    r.stage = "student";
    r.arch = "lstm";
    r.key = key;
    d.students.push_back(r);
  }
  rep.datasets.push_back(d);
  auto md = render_markdown(rep);
  for (const char* name : {"| lstm | 256 |", "| lstm residual | 256 |",
                           "| lstm forget bias 1 | 256 |", "| lstm forget bias 0.5 | 256 |"})
    EXPECT_NE(md.find(name), std::string::npos) << name << "\n" << md;
}

TEST_F(ReportTest, LearningCurvesPerStageGroup) {
  auto rep = build_report(reg_, "e", {});
  EXPECT_EQ(curve_groups(rep, "runne"), (std::vector<std::string>{"teacher", "lstm", "sru"}));
  auto svg = render_curves_svg(rep, "runne", "lstm");
  // Four lstm runs: four dev-F1 lines, four CE lines, two KD lines (dashed).
  size_t lines = 0, dashed = 0;
  for (size_t p = 0; (p = svg.find("<polyline", p)) != std::string::npos; ++p) ++lines;
  for (size_t p = 0; (p = svg.find("stroke-dasharray=\"5,3\" points", p)) != std::string::npos; ++p)
    ++dashed;
  EXPECT_EQ(lines, 10u);
  EXPECT_EQ(dashed, 2u);
  EXPECT_NE(svg.find("lstm: dev F1 per epoch"), std::string::npos);
}

// Log-axis ticks stay readable when the data spans less than a decade.
TEST(SvgPlot, TicksOnNarrowAndWideLogRanges) {
  EXPECT_EQ(ticks(1, 100, true), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  auto narrow = ticks(2.2, 2.5, true);
  ASSERT_GE(narrow.size(), 3u);
  EXPECT_NEAR(narrow.front(), 2.2, 1e-9);
  EXPECT_NEAR(narrow.back(), 2.5, 1e-9);
  EXPECT_EQ(ticks(0, 1, false), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
}

TEST_F(ReportTest, EmptyOrUnknown) {
  test::TempDir d;
  Registry empty(d.file("e.sqlite"));
  EXPECT_THROW(build_report(empty, "", {}), Error);
  try {
    build_report(reg_, "nope", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "no experiment 'nope' in " + dir_.file("r.sqlite") + " (known: e)");
  }
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

// RuNNE's shared task ranks by macro F1: the KD gain, retained % and the fronts follow it,
// not the mention F1.
TEST(ReportHeadline, RuNNEUsesMacroF1) {
  test::TempDir dir;
  Registry reg(dir.file("r.sqlite"));
  reg.upsert_experiment("e", "e.yaml", "");
  auto add = [&](const std::string& id, const std::string& stage, double kd, int seed, double f1,
                 double macro) {
    RunRecord r;
    r.id = id;
    r.experiment = "e";
    r.stage = stage;
    r.dataset = "runne";
    r.config = {{"params",
                 {{"arch", "sru"},
                  {"hidden", 64},
                  {"seed", seed},
                  {"loss", {{"ce_weight", 1.0}, {"kd_weight", kd}}}}},
                {"dataset", {{"format", "runne"}}}};
    r.run_json = nlohmann::json::object();
    r.run_dir = dir.file(id);
    r.state = state::kPending;
    r.executor = "local";
    reg.insert_run(r);
    AttemptRecord a;
    a.run_id = id;
    a.executor = "local";
    a.state = state::kCompleted;
    a.start_time = 1;
    a.end_time = 2;
    reg.add_attempt(a);
    reg.finish_attempt(a, {{"status", "ok"}, {"metrics", {{"f1", f1}, {"macro_f1", macro}}}});
  };
  add("t", "teacher", 0, 1, 0.8, 0.6);
  add("k1", "student", 1, 1, 0.5, 0.45);
  add("k2", "student", 1, 2, 0.5, 0.47);
  add("c1", "student", 0, 1, 0.6, 0.40);
  add("c2", "student", 0, 2, 0.6, 0.40);
  auto rep = build_report(reg, "e", {});
  auto& d = rep.datasets.at(0);
  EXPECT_EQ(d.headline, "macro_f1");
  ASSERT_EQ(d.students.size(), 2u);
  for (auto& s : d.students)
    if (s.kd_weight != 0) {
      // Mention F1 would say -10 points; macro F1 says +6.
      EXPECT_NEAR(s.kd_gain_points, 6.0, 1e-9);
      EXPECT_NEAR(s.retained, 100 * 0.46 / 0.6, 1e-9);
      EXPECT_EQ(s.gain_pairs, 2);
    }
  auto md = render_markdown(rep);
  EXPECT_NE(md.find("Headline: Macro F1 (the shared task's metric)"), std::string::npos) << md;
}

}  // namespace
}  // namespace kdx
