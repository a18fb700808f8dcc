// Helpers for tests: scratch directories and running our real binaries as child processes.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdx::test {

// A fresh directory under $TMPDIR, removed when the object dies (unless KDX_KEEP_TMP is set).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes a file (creating parent directories) and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv with the given working directory and extra environment ("K=V"); captures output.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd = "",
                          const std::vector<std::string>& env = {});

std::string slurp(const std::string& path);
bool file_exists(const std::string& path);
// A run.json for kdx-worker on the real RuNNE copy (train; test texts + answers), as the
// planner writes it, for tests that drive the worker without kdx.
nlohmann::json runne_run_json(const std::string& data_dir, const std::string& id,
                              const std::string& stage, const nlohmann::json& params,
                              const std::string& run_dir, const std::string& teacher_dir = "",
                              const std::string& logits_dir = "");

// The message of the kdx::Error that f() throws, or "(no error)".
std::string error_of(const std::function<void()>& f);

// navec's news vectors as `make test` fetches them (kdx data fetch navec --to ~/.cache/kdx):
// $KDX_NAVEC, else $KDX_CACHE (default ~/.cache/kdx)/navec/navec_news_v1_1B_250K_300d_100q.tar.
std::string navec_tar();

// The real data sets: $KDX_DATA_DIR, else ../shared/data from the source tree; empty if absent.
std::string shared_data_dir();

}  // namespace kdx::test
