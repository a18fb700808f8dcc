#include "orchestrator/planner.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/error.h"

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
