#include "orchestrator/registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/error.h"
#include "orchestrator/run_state.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

RunRecord make_run(const std::string& id) {
  RunRecord r;
  r.id = id;
  r.experiment = "e";
  r.stage = "student";
  r.dataset = "d";
  r.config = {{"x", 1}};
  r.run_json = {{"id", id}};
  r.run_dir = "/tmp/" + id;
  r.state = state::kPending;
  r.executor = "local";
  return r;
}

TEST(Registry, FreshFileGetsCurrentSchemaAndWal) {
  test::TempDir dir;
  Registry reg(dir.file("sub/dir/reg.sqlite"));  // parent directories are created
  EXPECT_EQ(reg.schema_version(), Registry::kSchemaVersion);
  sqlite3_stmt* s;
  sqlite3_prepare_v2(reg.handle(), "PRAGMA journal_mode", -1, &s, nullptr);
  sqlite3_step(s);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
}

TEST(Registry, NewerSchemaIsRefusedAndLeftUntouched) {
  test::TempDir dir;
  std::string path = dir.file("reg.sqlite");
  {
    Registry reg(path);
    reg.exec("PRAGMA user_version=99");
  }
  std::string before = test::slurp(path);
  try {
    Registry reg(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path +
                  ": registry schema version 99 is newer than this kdx supports (1); "
                  "use a newer kdx, or another --registry");
  }
  EXPECT_EQ(test::slurp(path), before);
}

TEST(Registry, NotASqliteFile) {
  test::TempDir dir;
  std::string path = dir.write(
      "reg.sqlite", "this is not a database, just text that is long enough to matter......");
  try {
    Registry reg(path);
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.substr(0, what.find(" SQLite's")),
              path + ": the registry is corrupt (file is not a database); recover it with");
  }
}

TEST(Registry, InsertIsIdempotent) {
  test::TempDir dir;
  Registry reg(dir.file("r.sqlite"));
  reg.upsert_experiment("e", "e.yaml", "");
  EXPECT_TRUE(reg.insert_run(make_run("aaa")));
  EXPECT_FALSE(reg.insert_run(make_run("aaa")));
  EXPECT_EQ(reg.runs("e").size(), 1u);
  EXPECT_EQ(reg.runs_by_prefix("aa").size(), 1u);
}

TEST(Registry, ResultIsIngestedExactlyOnce) {
  test::TempDir dir;
  Registry reg(dir.file("r.sqlite"));
  reg.upsert_experiment("e", "e.yaml", "");
  reg.insert_run(make_run("run1"));
  AttemptRecord a;
  a.run_id = "run1";
  a.executor = "local";
  a.state = state::kRunning;
  reg.add_attempt(a);
  EXPECT_EQ(a.number, 1);
  a.state = state::kCompleted;
  nlohmann::json result = {{"status", "ok"}, {"metrics", {{"f1", 0.5}, {"params", 1000}}}};
  EXPECT_TRUE(reg.finish_attempt(a, result));
  result["metrics"]["f1"] = 0.9;
  EXPECT_FALSE(reg.finish_attempt(a, result));  // second ingest: no change
  auto m = reg.metrics("run1");
  EXPECT_EQ(m["f1"], 0.5);
  EXPECT_EQ(m["params"], 1000);
  EXPECT_EQ(reg.run("run1")->state, state::kCompleted);
  AttemptRecord b;
  b.run_id = "run1";
  b.executor = "local";
  b.state = state::kRunning;
  reg.add_attempt(b);
  EXPECT_EQ(b.number, 2);
}

TEST(Registry, TransactionRollsBackOnError) {
  test::TempDir dir;
  Registry reg(dir.file("r.sqlite"));
  try {
    Registry::Transaction t(reg);
    reg.upsert_experiment("e", "e.yaml", "");
    reg.insert_run(make_run("x"));
    throw Error("boom");
  } catch (const Error&) {
  }
  EXPECT_TRUE(reg.runs().empty());
  EXPECT_TRUE(reg.experiments().empty());
}

}  // namespace
}  // namespace kdx
