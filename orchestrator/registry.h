// Registry: the SQLite file that records experiments, runs, attempts and metrics.
// Only the orchestrator opens it (workers write result.json; kdx ingests it). WAL mode,
// a schema version in PRAGMA user_version, migrations applied at open.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace kdx {

struct RunRecord {
  std::string id;
  std::string experiment;
  std::string stage;
  std::string dataset;
  nlohmann::json config;
  nlohmann::json run_json;
  std::vector<std::string> deps;
  std::string run_dir;
  std::string state;
  std::string raw_state;
  std::string reason;
  std::string executor;
  double created_at = 0;
  double updated_at = 0;
  nlohmann::json result;  // the ingested result.json, null until COMPLETED
  int seq = 0;            // plan order within the experiment
};

struct AttemptRecord {
  long id = 0;
  std::string run_id;
  int number = 0;
  std::string executor;
  std::string job_id;
  long pid = 0;             // local: the worker's pid (its process group)
  long long pid_start = 0;  // local: its start time in clock ticks, against pid reuse
  long supervisor_pid = 0;
  std::string host;
  double submit_time = 0, start_time = 0, end_time = 0;
  std::optional<int> exit_code;
  std::string state;
  std::string raw_state;
  std::string reason;
  double elapsed_s = 0;
  int alloc_cpus = 0, alloc_gpus = 0;
  bool ingested = false;
};

class Registry {
 public:
  static constexpr int kSchemaVersion = 1;

  // ReadOrReadOnly: commands that only look (status, show, report, logs) still work on a
  // registry they cannot write (a read-only mount, another user's results): it is then
  // opened read-only and read_only() says so.
  enum class Access { ReadWrite, ReadOrReadOnly };

  // Creates the file (and its directory) when absent. Throws kdx::Error naming the path
  // for an unreadable file or a schema newer than kSchemaVersion.
  explicit Registry(const std::string& path, Access access = Access::ReadWrite);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  int schema_version();
  // PRAGMA quick_check; throws kdx::Error "<path>: the registry is corrupt (...); recover it
  // with ..." when a page is damaged.
  void check_integrity();

  // BEGIN IMMEDIATE ... COMMIT; rolled back when the guard dies without commit().
  class Transaction {
   public:
    explicit Transaction(Registry& r);
    ~Transaction();
    void commit();

   private:
    Registry& r_;
    bool done_ = false;
  };

  void upsert_experiment(const std::string& name, const std::string& spec_file,
                         const std::string& spec_text);
  std::vector<std::string> experiments();
  bool has_experiment(const std::string& name);

  // False (and no change) when a run with this id exists already.
  bool insert_run(const RunRecord& run);
  std::optional<RunRecord> run(const std::string& id);
  // All runs, or those of one experiment, in plan order.
  std::vector<RunRecord> runs(const std::string& experiment = "");
  // Runs whose id starts with `prefix` (ids are hashes; users type a few characters).
  std::vector<RunRecord> runs_by_prefix(const std::string& prefix);
  void set_run_state(const std::string& id, const std::string& state, const std::string& raw_state,
                     const std::string& reason, const std::string& executor = "");

  long add_attempt(AttemptRecord& attempt);  // assigns id and number
  void update_attempt(const AttemptRecord& attempt);
  std::vector<AttemptRecord> attempts(const std::string& run_id);
  std::optional<AttemptRecord> last_attempt(const std::string& run_id);
  // Attempts still RUNNING or PENDING for an executor.
  std::vector<AttemptRecord> active_attempts(const std::string& executor);

  // Ends an attempt and its run in one transaction, storing result.json's metrics when the
  // attempt COMPLETED. Returns false when the attempt was already ingested: ingest happens once.
  bool finish_attempt(const AttemptRecord& attempt, const nlohmann::json& result);

  // Stores a checked result.json (and its metrics) on a run with no attempt: a run found
  // finished in its run directory. Joins the caller's transaction.
  void record_result(const std::string& run_id, const nlohmann::json& result);

  std::map<std::string, nlohmann::json> metrics(const std::string& run_id);

  void exec(const std::string& sql);
  sqlite3* handle() { return db_; }

 private:
  void migrate();
  void open_read_only();
  std::string path_;
  sqlite3* db_ = nullptr;
  bool read_only_ = false;
};

double now_seconds();

}  // namespace kdx
