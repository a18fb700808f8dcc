#include "orchestrator/planner.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "common/error.h"
#include "common/params.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

Plan plan_of(const std::string& yaml) {
  SpecOptions o;
  o.check_data_files = false;
  return make_plan(parse_spec_text(yaml, "p.yaml", o), "/r");
}

const char* kBase =
    "experiment: p\n"
    "datasets:\n"
    "  - {name: a, format: runne, train: a/train.jsonl, test: a/test.jsonl}\n"
    "  - {name: b, format: rurebus, train: [b/1.zip, b/2.zip], test: b/t.zip}\n"
    "teacher: {hidden: 64}\n";

TEST(Planner, StageDagPerDataset) {
  auto plan =
      plan_of(std::string(kBase) +
              "students:\n  grid: {arch: [lstm, sru], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n");
  // Per dataset: teacher + logits + 4 students.
  ASSERT_EQ(plan.runs.size(), 12u);
  std::map<std::string, const PlannedRun*> by_id;
  for (auto& r : plan.runs) {
    for (auto& d : r.deps) EXPECT_TRUE(by_id.count(d)) << "dependency " << d << " must come first";
    by_id[r.id] = &r;
  }
  for (auto& r : plan.runs) {
    if (r.stage == "teacher") {
      EXPECT_TRUE(r.deps.empty());
    }
    if (r.stage == "logits") {
      EXPECT_EQ(by_id[r.deps.at(0)]->stage, "teacher");
    }
    if (r.stage == "student") {
      bool kd = r.config["params"]["loss"]["kd_weight"] != 0;
      EXPECT_EQ(by_id[r.deps.at(0)]->stage, kd ? "logits" : "teacher");
      EXPECT_EQ(by_id[r.deps.at(0)]->dataset, r.dataset);
      EXPECT_EQ(r.logits_dir.empty(), !kd);
    }
    EXPECT_EQ(r.run_dir, "/r/runs/p/" + r.id);
    EXPECT_EQ(r.id.size(), 12u);
  }
}

TEST(Planner, KeepDatasetsKeepsTheirIdsAndTheSharedPretrain) {
  SpecOptions o;
  o.check_data_files = false;
  std::string yaml = std::string(kBase) +
                     "students:\n  grid: {arch: [lstm], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n";
  Spec spec = parse_spec_text(yaml, "p.yaml", o);
  Plan all = make_plan(spec, "/r");
  Plan only_b = make_plan(spec, "/r");
  keep_datasets(only_b, spec, {"b"});
  std::set<std::string> ids_b;
  for (auto& r : all.runs)
    if (r.dataset == "b") ids_b.insert(r.id);
  std::set<std::string> kept;
  for (auto& r : only_b.runs) {
    EXPECT_EQ(r.dataset, "b");
    kept.insert(r.id);
  }
  EXPECT_EQ(kept, ids_b);
  EXPECT_EQ(kept.size(), 4u);  // teacher, logits, two students

  // A pretrain run is shared: kept while a kept teacher reads it.
  Spec pre = parse_spec_text(
      "experiment: p\n"
      "datasets:\n"
      "  - {name: a, format: runne, train: a/train.jsonl, test: a/test.jsonl}\n"
      "  - {name: b, format: rurebus, train: [b/1.zip, b/2.zip], test: b/t.zip}\n"
      "teacher: {epochs: 1}\n"
      "pretrain: {corpus: [a/dev.jsonl], epochs: 1}\n"
      "students:\n  grid: {arch: [lstm], loss: [{kd_weight: 0}, {kd_weight: 1}]}\n",
      "p.yaml", o);
  Plan p = make_plan(pre, "/r");
  keep_datasets(p, pre, {"a"});
  ASSERT_FALSE(p.runs.empty());
  EXPECT_EQ(p.runs.front().stage, "pretrain");
  EXPECT_EQ(p.runs.size(), 5u);

  try {
    keep_datasets(all, spec, {"c"});
    FAIL() << "an unknown dataset must be refused";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "p.yaml: --dataset c: no such dataset (the file has: a, b)");
  }
}

TEST(Planner, IdsIgnoreKeyOrderAndNumberSpelling) {
  auto a =
      plan_of(std::string(kBase) + "students:\n  fixed: {lr: 0.001, epochs: 2, dropout: 1.0e-1}\n");
  auto b =
      plan_of(std::string(kBase) + "students:\n  fixed: {dropout: 0.1, epochs: 2.0, lr: 1e-3}\n");
  ASSERT_EQ(a.runs.size(), b.runs.size());
  for (size_t i = 0; i < a.runs.size(); ++i) EXPECT_EQ(a.runs[i].id, b.runs[i].id);
}

TEST(Planner, ChangingOneValueChangesOnlyAffectedRuns) {
  auto a = plan_of(std::string(kBase) + "students:\n  grid: {hidden: [32, 64, 128]}\n");
  auto b = plan_of(std::string(kBase) + "students:\n  grid: {hidden: [32, 64, 256]}\n");
  std::set<std::string> ids_a, ids_b;
  for (auto& r : a.runs) ids_a.insert(r.id);
  for (auto& r : b.runs) ids_b.insert(r.id);
  int shared = 0;
  for (auto& id : ids_b) shared += ids_a.count(id);
  EXPECT_EQ(shared, static_cast<int>(a.runs.size()) - 2);  // one student per dataset changed

  // A teacher change changes the teacher, its logits and every student downstream.
  auto c =
      plan_of(std::string(kBase).replace(std::string(kBase).find("hidden: 64"), 10, "hidden: 96") +
              "students:\n  grid: {hidden: [32, 64, 128]}\n");
  for (auto& r : c.runs) EXPECT_EQ(ids_a.count(r.id), 0u) << r.stage;
}

TEST(Planner, StudentsCanPickDatasets) {
  auto plan = plan_of(std::string(kBase) + "students:\n  grid: {dataset: [b], hidden: [8, 16]}\n");
  for (auto& r : plan.runs) EXPECT_EQ(r.dataset, "b");
  EXPECT_EQ(plan.runs.size(), 4u);
}

TEST(Planner, RunJsonHasAbsolutePathsAndResolvedDefaults) {
  SpecOptions o;
  o.check_data_files = false;
  auto spec = parse_spec_text(std::string(kBase) + "students: {}\n", "p.yaml", o);
  auto plan = make_plan(spec, "/r");
  auto& s = plan.runs.back();
  EXPECT_EQ(s.stage, "student");
  auto j = make_run_json(s, spec);
  EXPECT_EQ(j["params"]["arch"], "lstm");
  EXPECT_EQ(j["params"]["window"], 128);
  EXPECT_EQ(j["teacher_dir"].get<std::string>().substr(0, 10), "/r/runs/p/");
  EXPECT_EQ(j["dataset"]["train"].size(), 2u);
}

TEST(Planner, StudentWindowMustMatchTeacher) {
  try {
    plan_of(std::string(kBase) + "students:\n  fixed: {window: 64}\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "p.yaml: students: window = 64 differs from the teacher's 128 (student logits must "
        "align token by token with the teacher's)");
  }
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

TEST(Planner, PretrainRunsOnceBeforeEveryTeacher) {
  auto plan = plan_of(
      "experiment: p\n"
      "datasets:\n"
      "  - {name: a, format: runne, train: a/train.jsonl, test: a/test.jsonl}\n"
      "  - {name: b, format: rurebus, train: [b/1.zip, b/2.zip], test: b/t.zip}\n"
      "pretrain: {corpus: [a/dev.jsonl, b/1.zip], layers: 4, hidden: 256, heads: 4}\n"
      "teacher: {epochs: 2}\n"
      "students:\n  grid: {arch: [lstm]}\n");
  ASSERT_EQ(plan.runs.front().stage, "pretrain");
  const auto& pre = plan.runs.front();
  EXPECT_EQ(pre.config["params"]["layers"], 4);
  EXPECT_EQ(pre.config["corpus"], nlohmann::json({"a/dev.jsonl", "b/1.zip"}));
  int teachers = 0, pretrains = 0;
  for (auto& r : plan.runs) {
    pretrains += r.stage == "pretrain";
    if (r.stage != "teacher") continue;
    ++teachers;
    EXPECT_EQ(r.deps, std::vector<std::string>{pre.id});
    EXPECT_EQ(r.pretrain_dir, pre.run_dir);
    EXPECT_EQ(r.config["pretrain"], pre.id);
    // The architecture is the pretrained encoder's: no from-scratch keys in the teacher.
    EXPECT_FALSE(r.config["params"].contains("layers"));
    EXPECT_FALSE(r.config["params"].contains("vocab_size"));
  }
  EXPECT_EQ(teachers, 2);
  EXPECT_EQ(pretrains, 1);
}

TEST(Planner, ArchitectureDefaultsFillOnlyWhatTheGridLeavesOpen) {
  auto plan = plan_of(std::string(kBase) +
                      "students:\n  grid: {arch: [lstm, sru, srupp]}\n"
                      "  include: [{arch: srupp, lr: 0.002, highway_bias: 0.5}]\n");
  int seen = 0;
  for (auto& r : plan.runs) {
    if (r.stage != "student" || r.dataset != "a") continue;
    auto& p = r.config["params"];
    auto defaults = normalize_numbers(architecture_defaults(p["arch"]));
    if (p["lr"] == 0.002) {
      EXPECT_EQ(p["highway_bias"], 0.5);
    } else {
      EXPECT_EQ(p["lr"], defaults["lr"]) << p["arch"];
      if (defaults.contains("highway_bias")) {
        EXPECT_EQ(p["highway_bias"], defaults["highway_bias"]);
      }
    }
    ++seen;
  }
  EXPECT_EQ(seen, 4);
}

TEST(Planner, UnlabeledTextGoesToTheLogitsAndDistillingStudentsOnly) {
  auto plan = plan_of(
      "experiment: p\n"
      "datasets:\n"
      "  - {name: a, format: runne, train: a/train.jsonl, test: a/test.jsonl,\n"
      "     unlabeled: [a/dev.jsonl]}\n"
      "teacher: {hidden: 64}\n"
      "students:\n  grid: {loss: [{kd_weight: 0}, {kd_weight: 1}]}\n");
  int kd = 0, ce = 0;
  for (auto& r : plan.runs) {
    if (r.stage == "teacher") {
      EXPECT_FALSE(r.unlabeled);
    }
    if (r.stage == "logits") {
      EXPECT_TRUE(r.unlabeled);
      EXPECT_EQ(r.config["unlabeled"], nlohmann::json({"a/dev.jsonl"}));
    }
    if (r.stage != "student") continue;
    bool distils = r.config["params"]["loss"]["kd_weight"] != 0;
    EXPECT_EQ(r.unlabeled, distils);
    EXPECT_EQ(r.config.contains("unlabeled"), distils);
    (distils ? kd : ce)++;
  }
  EXPECT_EQ(kd, 1);
  EXPECT_EQ(ce, 1);
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

const char* kTwoPhase =
    "experiment: p\n"
    "datasets:\n"
    "  - {name: a, format: runne, train: a/train.jsonl, test: a/test.jsonl, unlabeled: "
    "news.txt}\n"
    "teacher: {hidden: 64}\n"
    "students:\n"
    "  fixed: {loss: {kd_weight: 0, ce_weight: 0.2, dice_weight: 0.8}, epochs: 10}\n"
    "  grid:\n"
    "    arch: [lstm]\n"
    "    two_phase: [{epochs: 40, lr: 0.01, kd_loss: mse}]\n"
    "    lr: [0.001, 0.002]\n";

TEST(Planner, TwoPhaseStudentsAreKdThenFinetune) {
  auto plan = plan_of(kTwoPhase);
  std::map<std::string, const PlannedRun*> by_id;
  std::vector<const PlannedRun*> kd, ft;
  for (auto& r : plan.runs) {
    by_id[r.id] = &r;
    if (r.stage == "student_kd") kd.push_back(&r);
    if (r.stage == "student_finetune") ft.push_back(&r);
  }
  // The two fine-tuning learning rates share one phase-1 run.
  ASSERT_EQ(kd.size(), 1u);
  ASSERT_EQ(ft.size(), 2u);
  auto& k = *kd[0];
  EXPECT_EQ(by_id.at(k.deps.at(0))->stage, "logits");
  EXPECT_EQ(k.config["params"]["epochs"], 40);
  EXPECT_EQ(k.config["params"]["lr"], 0.01);
  EXPECT_EQ(k.config["params"]["loss"],
            nlohmann::json({{"ce_weight", 0}, {"kd_weight", 1}, {"kd_loss", "mse"}}));
  EXPECT_FALSE(k.config["params"].contains("two_phase"));
  EXPECT_TRUE(k.unlabeled);
  EXPECT_FALSE(k.logits_dir.empty());
  for (auto* f : ft) {
    EXPECT_EQ(f->deps, std::vector<std::string>{k.id});
    EXPECT_EQ(f->student_dir, k.run_dir);
    EXPECT_TRUE(f->logits_dir.empty());
    EXPECT_EQ(f->config["params"]["epochs"], 10);
    EXPECT_EQ(f->config["params"]["loss"]["dice_weight"], 0.8);
    EXPECT_FALSE(f->config["params"].contains("two_phase"));
    SpecOptions o;
    o.check_data_files = false;
    auto j = make_run_json(*f, parse_spec_text(kTwoPhase, "p.yaml", o));
    EXPECT_EQ(j["student_dir"], k.run_dir);
    EXPECT_EQ(j["stage"], "student_finetune");
  }
  EXPECT_NE(ft[0]->id, ft[1]->id);
}

TEST(Planner, TwoPhaseNeedsATransferCorpusAndNoKdInFinetuning) {
  std::string no_corpus = kTwoPhase;
  no_corpus.replace(no_corpus.find(", unlabeled: news.txt"), 21, "");
  try {
    plan_of(no_corpus);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "p.yaml: students: two_phase: dataset 'a' has no unlabeled: split (the transfer "
                 "corpus the student_kd phase distils on)");
  }
  std::string mixed = kTwoPhase;
  mixed.replace(mixed.find("kd_weight: 0,"), 13, "kd_weight: 1,");
  try {
    plan_of(mixed);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "p.yaml: students: two_phase: loss.kd_weight is 1, but the fine-tuning phase is "
                 "supervised only (the teacher is learned from in the student_kd phase); set "
                 "loss.kd_weight: 0");
  }
}

}  // namespace
}  // namespace kdx

namespace kdx {
namespace {

// A finished teacher's tag layout, not this version's default, is what its students get.
TEST(Planner, StudentsOfACheckpointTakeItsTagLayout) {
  test::TempDir dir;
  for (auto [classes, columns, scheme] :
       {std::tuple{3, 29, "per_type_bio"}, std::tuple{5, 29, "per_type_bilou"},
        std::tuple{59, 1, "flat_bio"}}) {
    dir.write(
        "teacher/model.json",
        nlohmann::json({{"arch", "bert"}, {"columns", columns}, {"classes", classes}}).dump());
    auto plan = plan_of(
        "experiment: p\n"
        "datasets:\n"
        "  - {name: a, format: runne, train: a/train.jsonl, test: a/test.jsonl}\n"
        "teacher: {checkpoint: " +
        dir.file("teacher") + "}\nstudents:\n  grid: {loss: [{kd_weight: 0}]}\n");
    for (auto& r : plan.runs)
      if (r.stage == "student") {
        EXPECT_EQ(r.config["params"]["tagging"], scheme) << classes;
      }
  }
}

}  // namespace
}  // namespace kdx
