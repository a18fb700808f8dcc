#include "orchestrator/registry.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_io.h"
#include "orchestrator/run_state.h"

namespace kdx {

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

namespace {

// Migration N takes a registry from version N to N+1. Append, never edit.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE experiments(
  name TEXT PRIMARY KEY, spec_file TEXT, spec_text TEXT, created_at REAL, updated_at REAL);
CREATE TABLE runs(
  id TEXT PRIMARY KEY, experiment TEXT NOT NULL REFERENCES experiments(name),
  stage TEXT NOT NULL, dataset TEXT, config TEXT NOT NULL, run_json TEXT NOT NULL,
  deps TEXT NOT NULL, run_dir TEXT NOT NULL, state TEXT NOT NULL, raw_state TEXT,
  reason TEXT, executor TEXT, created_at REAL, updated_at REAL, result TEXT, seq INTEGER);
CREATE INDEX runs_by_experiment ON runs(experiment, seq);
CREATE TABLE attempts(
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
  number INTEGER NOT NULL, executor TEXT, job_id TEXT, pid INTEGER, pid_start INTEGER,
  supervisor_pid INTEGER, host TEXT, submit_time REAL, start_time REAL, end_time REAL,
  exit_code INTEGER, state TEXT NOT NULL, raw_state TEXT, reason TEXT, elapsed_s REAL,
  alloc_cpus INTEGER, alloc_gpus INTEGER, ingested INTEGER NOT NULL DEFAULT 0,
  UNIQUE(run_id, number));
CREATE INDEX attempts_by_state ON attempts(executor, state);
CREATE TABLE metrics(
  run_id TEXT NOT NULL REFERENCES runs(id), attempt INTEGER, key TEXT NOT NULL,
  value TEXT NOT NULL, PRIMARY KEY(run_id, key));
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == Registry::kSchemaVersion, "one migration per schema version");

// What a user does about a damaged registry: SQLite's own recovery keeps what it can read;
// re-submitting into a fresh registry records every finished run again from its run
// directory (its result.json) without running it.
std::string recovery_advice(const std::string& path) {
  return "recover it with SQLite's own tool: sqlite3 " + path + " .recover | sqlite3 " + path +
         ".recovered && mv " + path + ".recovered " + path + "; or move it aside (mv " + path +
         " " + path +
         ".damaged) and submit each experiment again: runs whose result.json is in "
         "their run directory are recorded as COMPLETED without running again";
}

// Every SQLite failure as a kdx::Error; a damaged file says so, with the way out.
[[noreturn]] void throw_sqlite(sqlite3* db, const std::string& what) {
  int code = sqlite3_errcode(db) & 0xff;
  std::string msg = sqlite3_errmsg(db);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    const char* file = sqlite3_db_filename(db, "main");
    std::string path = file && *file ? file : "the registry";
    throw Error(path + ": the registry is corrupt (" + msg + "); " + recovery_advice(path));
  }
  throw Error("registry: " + what + msg);
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      throw_sqlite(db, "cannot prepare statement: ");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, long long v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, long v) { return bind(i, static_cast<long long>(v)); }
  Stmt& bind(int i, int v) { return bind(i, static_cast<long long>(v)); }
  Stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(db_, "");
  }
  std::string text(int c) {
    auto p = sqlite3_column_text(s_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  double real(int c) { return sqlite3_column_double(s_, c); }
  long long integer(int c) { return sqlite3_column_int64(s_, c); }
  bool is_null(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string path() const {
    const char* f = sqlite3_db_filename(db_, "main");
    return f && *f ? f : "the registry";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

nlohmann::json parse_or_null(const std::string& s) {
  if (s.empty()) return nullptr;
  return parse_json(s);
}

// A column kdx wrote as JSON that no longer parses: the file was edited or damaged.
nlohmann::json parse_column(Stmt& s, int c, const char* column, const std::string& id) {
  auto j = parse_or_null(s.text(c));
  if (j.is_discarded())
    throw Error("registry: run " + id + ": its " + column +
                " is not valid JSON (the registry was edited or damaged); " +
                recovery_advice(s.path()));
  return j;
}

const char* kRunColumns =
    "id, experiment, stage, dataset, config, run_json, deps, run_dir, state, raw_state, reason, "
    "executor, created_at, updated_at, result, seq";

RunRecord read_run(Stmt& s) {
  RunRecord r;
  r.id = s.text(0);
  r.experiment = s.text(1);
  r.stage = s.text(2);
  r.dataset = s.text(3);
  r.config = parse_column(s, 4, "config", r.id);
  r.run_json = parse_column(s, 5, "run_json", r.id);
  if (!r.run_json.is_object())
    throw Error("registry: run " + r.id + ": its run_json is not an object; " +
                recovery_advice(s.path()));
  auto deps = parse_column(s, 6, "deps", r.id);
  if (deps.is_array())
    for (auto& d : deps)
      if (d.is_string()) r.deps.push_back(d.get<std::string>());
  r.run_dir = s.text(7);
  r.state = s.text(8);
  r.raw_state = s.text(9);
  r.reason = s.text(10);
  r.executor = s.text(11);
  r.created_at = s.real(12);
  r.updated_at = s.real(13);
  r.result = parse_column(s, 14, "result", r.id);
  r.seq = static_cast<int>(s.integer(15));
  return r;
}

const char* kAttemptColumns =
    "id, run_id, number, executor, job_id, pid, pid_start, supervisor_pid, host, submit_time, "
    "start_time, end_time, exit_code, state, raw_state, reason, elapsed_s, alloc_cpus, alloc_gpus, "
    "ingested";

AttemptRecord read_attempt(Stmt& s) {
  AttemptRecord a;
  a.id = static_cast<long>(s.integer(0));
  a.run_id = s.text(1);
  a.number = static_cast<int>(s.integer(2));
  a.executor = s.text(3);
  a.job_id = s.text(4);
  a.pid = static_cast<long>(s.integer(5));
  a.pid_start = s.integer(6);
  a.supervisor_pid = static_cast<long>(s.integer(7));
  a.host = s.text(8);
  a.submit_time = s.real(9);
  a.start_time = s.real(10);
  a.end_time = s.real(11);
  if (!s.is_null(12)) a.exit_code = static_cast<int>(s.integer(12));
  a.state = s.text(13);
  a.raw_state = s.text(14);
  a.reason = s.text(15);
  a.elapsed_s = s.real(16);
  a.alloc_cpus = static_cast<int>(s.integer(17));
  a.alloc_gpus = static_cast<int>(s.integer(18));
  a.ingested = s.integer(19) != 0;
  return a;
}

std::string dir_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

}  // namespace

namespace {

// SQLite URIs give '%', '?' and '#' a meaning; a path may hold them.
std::string uri_path(const std::string& p) {
  std::string out = "file:";
  for (char c : p) {
    if (c == '%')
      out += "%25";
    else if (c == '?')
      out += "%3f";
    else if (c == '#')
      out += "%23";
    else
      out += c;
  }
  return out;
}

}  // namespace

void Registry::open_read_only() {
  // mode=ro reads a WAL registry when its -shm can be used; immutable=1 when even that cannot
  // be created (a read-only mount), which is safe because nobody can be writing it there.
  for (const char* query : {"?mode=ro", "?immutable=1"}) {
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
    if (sqlite3_open_v2((uri_path(path_) + query).c_str(), &db_,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) != SQLITE_OK)
      continue;
    try {
      schema_version();
      Stmt probe(db_, "SELECT count(*) FROM runs");
      probe.step();
      read_only_ = true;
      return;
    } catch (const Error&) {
    }
  }
  std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
  if (db_) sqlite3_close(db_);
  db_ = nullptr;
  throw Error(path_ + ": cannot open registry, not even read-only: " + msg);
}

Registry::Registry(const std::string& path, Access access) : path_(path) {
  bool exists = file_exists(path);
  if (!dir_of(path).empty() && (!exists || access == Access::ReadWrite)) make_dirs(dir_of(path));
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    if (exists && access == Access::ReadOrReadOnly) {
      open_read_only();
      return;
    }
    throw Error(path + ": cannot open registry: " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  // Set-up steps that SQLite answers with an immediate "database is locked" instead of
  // waiting (switching a new file to WAL while another process does the same; found by
  // the ASan build's timing) are retried: each step is idempotent.
  for (int attempt = 0;; ++attempt) {
    try {
      int v = schema_version();
      if (v > kSchemaVersion)
        throw Error(path + ": registry schema version " + std::to_string(v) +
                    " is newer than this kdx supports (" + std::to_string(kSchemaVersion) +
                    "); use a newer kdx, or another --registry");
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA foreign_keys=ON");
      exec("PRAGMA synchronous=NORMAL");
      migrate();
      break;
    } catch (const Error& e) {
      int code = sqlite3_errcode(db_) & 0xff;
      if ((code == SQLITE_BUSY || code == SQLITE_LOCKED) && attempt < 200) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      int ext = sqlite3_extended_errcode(db_);
      bool unwritable = code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM ||
                        ext == SQLITE_IOERR_SHMOPEN;
      sqlite3_close(db_);
      db_ = nullptr;
      if (exists && unwritable && access == Access::ReadOrReadOnly) {
        open_read_only();
        if (schema_version() < kSchemaVersion)
          throw Error(path + ": registry schema version " + std::to_string(schema_version()) +
                      " needs upgrading, which needs write access");
        return;
      }
      std::string what = e.what();
      if (what.rfind(path, 0) == 0) throw;
      throw Error(path + ": " + what);
    }
  }
}

Registry::~Registry() {
  if (db_) sqlite3_close(db_);
}

void Registry::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    throw_sqlite(db_, "");
  }
}

void Registry::check_integrity() {
  // quick_check reads every page (not the indexes' contents): a zeroed page that queries
  // would silently skip, so that the runs on it seem never to have existed, is found here.
  Stmt s(db_, "PRAGMA quick_check");
  std::vector<std::string> problems;
  while (s.step())
    if (s.text(0) != "ok" && problems.size() < 3) problems.push_back(s.text(0));
  if (!problems.empty()) {
    std::string list;
    for (auto& p : problems) list += (list.empty() ? "" : "; ") + p;
    throw Error(path_ + ": the registry is corrupt (" + list + "); " + recovery_advice(path_));
  }
}

int Registry::schema_version() {
  Stmt s(db_, "PRAGMA user_version");
  s.step();
  return static_cast<int>(s.integer(0));
}

void Registry::migrate() {
  for (;;) {
    // The version is read under the write lock: two kdx processes opening a new registry at
    // once must not both create its tables.
    Transaction t(*this);
    int v = schema_version();
    if (v >= kSchemaVersion) {
      t.commit();
      return;
    }
    exec(kMigrations[v]);
    exec("PRAGMA user_version=" + std::to_string(v + 1));
    t.commit();
  }
}

Registry::Transaction::Transaction(Registry& r) : r_(r) {
  r_.exec("BEGIN IMMEDIATE");
}
Registry::Transaction::~Transaction() {
  if (!done_) {
    try {
      r_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Registry::Transaction::commit() {
  r_.exec("COMMIT");
  done_ = true;
}

void Registry::upsert_experiment(const std::string& name, const std::string& spec_file,
                                 const std::string& spec_text) {
  Stmt s(
      db_,
      "INSERT INTO experiments(name, spec_file, spec_text, created_at, updated_at) "
      "VALUES(?,?,?,?,?) "
      "ON CONFLICT(name) DO UPDATE SET spec_file=excluded.spec_file, spec_text=excluded.spec_text, "
      "updated_at=excluded.updated_at");
  double t = now_seconds();
  s.bind(1, name).bind(2, spec_file).bind(3, spec_text).bind(4, t).bind(5, t).step();
}

std::vector<std::string> Registry::experiments() {
  Stmt s(db_, "SELECT name FROM experiments ORDER BY created_at");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

bool Registry::has_experiment(const std::string& name) {
  Stmt s(db_, "SELECT 1 FROM experiments WHERE name=?");
  s.bind(1, name);
  return s.step();
}

bool Registry::insert_run(const RunRecord& r) {
  Stmt s(
      db_,
      "INSERT OR IGNORE INTO runs(id, experiment, stage, dataset, config, run_json, deps, run_dir, "
      "state, raw_state, reason, executor, created_at, updated_at, result, seq) "
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?)");
  double t = now_seconds();
  s.bind(1, r.id)
      .bind(2, r.experiment)
      .bind(3, r.stage)
      .bind(4, r.dataset)
      .bind(5, r.config.dump());
  s.bind(6, r.run_json.dump()).bind(7, nlohmann::json(r.deps).dump()).bind(8, r.run_dir);
  s.bind(9, r.state).bind(10, r.raw_state).bind(11, r.reason).bind(12, r.executor);
  s.bind(13, t).bind(14, t).bind(15, r.seq);
  s.step();
  return sqlite3_changes(db_) == 1;
}

std::optional<RunRecord> Registry::run(const std::string& id) {
  Stmt s(db_, (std::string("SELECT ") + kRunColumns + " FROM runs WHERE id=?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::vector<RunRecord> Registry::runs(const std::string& experiment) {
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs";
  if (!experiment.empty()) sql += " WHERE experiment=?";
  sql += " ORDER BY experiment, seq";
  Stmt s(db_, sql.c_str());
  if (!experiment.empty()) s.bind(1, experiment);
  std::vector<RunRecord> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

std::vector<RunRecord> Registry::runs_by_prefix(const std::string& prefix) {
  Stmt s(db_,
         (std::string("SELECT ") + kRunColumns + " FROM runs WHERE substr(id, 1, ?)=?").c_str());
  s.bind(1, static_cast<int>(prefix.size())).bind(2, prefix);
  std::vector<RunRecord> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

void Registry::set_run_state(const std::string& id, const std::string& state,
                             const std::string& raw_state, const std::string& reason,
                             const std::string& executor) {
  Stmt s(db_,
         "UPDATE runs SET state=?, raw_state=?, reason=?, updated_at=?, "
         "executor=CASE WHEN ?='' THEN executor ELSE ? END WHERE id=?");
  s.bind(1, state).bind(2, raw_state).bind(3, reason).bind(4, now_seconds());
  s.bind(5, executor).bind(6, executor).bind(7, id).step();
}

long Registry::add_attempt(AttemptRecord& a) {
  {
    Stmt n(db_, "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE run_id=?");
    n.bind(1, a.run_id);
    n.step();
    a.number = static_cast<int>(n.integer(0));
  }
  Stmt s(db_,
         "INSERT INTO attempts(run_id, number, executor, job_id, pid, pid_start, supervisor_pid, "
         "host, "
         "submit_time, start_time, end_time, exit_code, state, raw_state, reason, elapsed_s, "
         "alloc_cpus, "
         "alloc_gpus, ingested) VALUES(?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,?,0)");
  s.bind(1, a.run_id).bind(2, a.number).bind(3, a.executor).bind(4, a.job_id).bind(5, a.pid);
  s.bind(6, a.pid_start).bind(7, a.supervisor_pid).bind(8, a.host).bind(9, a.submit_time);
  s.bind(10, a.start_time).bind(11, a.end_time).bind(12, a.state).bind(13, a.raw_state);
  s.bind(14, a.reason).bind(15, a.elapsed_s).bind(16, a.alloc_cpus).bind(17, a.alloc_gpus);
  s.step();
  a.id = static_cast<long>(sqlite3_last_insert_rowid(db_));
  return a.id;
}

void Registry::update_attempt(const AttemptRecord& a) {
  Stmt s(
      db_,
      "UPDATE attempts SET job_id=?, pid=?, pid_start=?, supervisor_pid=?, host=?, start_time=?, "
      "end_time=?, exit_code=?, state=?, raw_state=?, reason=?, elapsed_s=?, alloc_cpus=?, "
      "alloc_gpus=? WHERE id=?");
  s.bind(1, a.job_id).bind(2, a.pid).bind(3, a.pid_start).bind(4, a.supervisor_pid).bind(5, a.host);
  s.bind(6, a.start_time).bind(7, a.end_time);
  if (a.exit_code)
    s.bind(8, *a.exit_code);
  else
    s.bind_null(8);
  s.bind(9, a.state).bind(10, a.raw_state).bind(11, a.reason).bind(12, a.elapsed_s);
  s.bind(13, a.alloc_cpus).bind(14, a.alloc_gpus).bind(15, a.id).step();
}

std::vector<AttemptRecord> Registry::attempts(const std::string& run_id) {
  Stmt s(db_, (std::string("SELECT ") + kAttemptColumns +
               " FROM attempts WHERE run_id=? ORDER BY number")
                  .c_str());
  s.bind(1, run_id);
  std::vector<AttemptRecord> out;
  while (s.step()) out.push_back(read_attempt(s));
  return out;
}

std::optional<AttemptRecord> Registry::last_attempt(const std::string& run_id) {
  Stmt s(db_, (std::string("SELECT ") + kAttemptColumns +
               " FROM attempts WHERE run_id=? ORDER BY number DESC LIMIT 1")
                  .c_str());
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return read_attempt(s);
}

std::vector<AttemptRecord> Registry::active_attempts(const std::string& executor) {
  Stmt s(db_, (std::string("SELECT ") + kAttemptColumns +
               " FROM attempts WHERE executor=? AND state IN ('PENDING','RUNNING') ORDER BY id")
                  .c_str());
  s.bind(1, executor);
  std::vector<AttemptRecord> out;
  while (s.step()) out.push_back(read_attempt(s));
  return out;
}

bool Registry::finish_attempt(const AttemptRecord& a, const nlohmann::json& result) {
  Transaction t(*this);
  {
    Stmt s(db_, "UPDATE attempts SET ingested=1 WHERE id=? AND ingested=0");
    s.bind(1, a.id).step();
    if (sqlite3_changes(db_) != 1) return false;  // someone ingested it first
  }
  update_attempt(a);
  // A run the user cancelled stays CANCELLED whatever the process did on its way out.
  auto current = run(a.run_id);
  std::string run_state = a.state;
  if (current && current->state == state::kCancelled && a.state != state::kCompleted)
    run_state = state::kCancelled;
  {
    Stmt s(db_,
           "UPDATE runs SET state=?, raw_state=?, reason=?, updated_at=?, result=? WHERE id=?");
    s.bind(1, run_state).bind(2, a.raw_state).bind(3, a.reason).bind(4, now_seconds());
    if (a.state == state::kCompleted)
      s.bind(5, result.dump());
    else
      s.bind_null(5);
    s.bind(6, a.run_id).step();
  }
  if (a.state == state::kCompleted && result.contains("metrics") && result["metrics"].is_object()) {
    Stmt del(db_, "DELETE FROM metrics WHERE run_id=?");
    del.bind(1, a.run_id).step();
    for (auto& [k, v] : result["metrics"].items()) {
      Stmt s(db_, "INSERT INTO metrics(run_id, attempt, key, value) VALUES(?,?,?,?)");
      s.bind(1, a.run_id).bind(2, a.number).bind(3, k).bind(4, v.dump()).step();
    }
  }
  t.commit();
  return true;
}

void Registry::record_result(const std::string& run_id, const nlohmann::json& result) {
  {
    Stmt s(db_, "UPDATE runs SET result=?, updated_at=? WHERE id=?");
    s.bind(1, result.dump()).bind(2, now_seconds()).bind(3, run_id).step();
  }
  if (!result.contains("metrics") || !result["metrics"].is_object()) return;
  for (auto& [k, v] : result["metrics"].items()) {
    Stmt s(db_, "INSERT OR REPLACE INTO metrics(run_id, attempt, key, value) VALUES(?,?,?,?)");
    s.bind(1, run_id).bind(2, 0).bind(3, k).bind(4, v.dump()).step();
  }
}

std::map<std::string, nlohmann::json> Registry::metrics(const std::string& run_id) {
  Stmt s(db_, "SELECT key, value FROM metrics WHERE run_id=? ORDER BY key");
  s.bind(1, run_id);
  std::map<std::string, nlohmann::json> out;
  while (s.step()) out[s.text(0)] = parse_or_null(s.text(1));
  return out;
}

}  // namespace kdx
