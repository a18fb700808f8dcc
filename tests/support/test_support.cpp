#include "tests/support/test_support.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace kdx::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kdx-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  path_ = p ? p : "";
}

TempDir::~TempDir() {
  if (path_.empty() || std::getenv("KDX_KEEP_TMP")) return;
  std::string cmd = "rm -rf '" + path_ + "'";
  (void)!std::system(cmd.c_str());
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string full = file(name);
  std::string dir = full.substr(0, full.rfind('/'));
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if ((i == dir.size() || dir[i] == '/') && !cur.empty()) ::mkdir(cur.c_str(), 0755);
    if (i < dir.size()) cur += dir[i];
  }
  std::ofstream(full, std::ios::binary) << content;
  return full;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& cwd,
                          const std::vector<std::string>& env) {
  TempDir io;
  std::string out_path = io.file("out"), err_path = io.file("err");
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::dup2(in, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    for (auto& e : env) ::putenv(::strdup(e.c_str()));
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

nlohmann::json runne_run_json(const std::string& data_dir, const std::string& id,
                              const std::string& stage, const nlohmann::json& params,
                              const std::string& run_dir, const std::string& teacher_dir,
                              const std::string& logits_dir) {
  std::string d = data_dir + "/runne/";
  return {{"kdx_run_version", 1},
          {"id", id},
          {"experiment", "test"},
          {"stage", stage},
          {"params", params},
          {"config", nlohmann::json::object()},
          {"dataset",
           {{"name", "runne"},
            {"format", "runne"},
            {"train", {d + "train.jsonl"}},
            {"test", {d + "test.jsonl", d + "test_with_answers.jsonl"}}}},
          {"run_dir", run_dir},
          {"teacher_dir", teacher_dir},
          {"logits_dir", logits_dir},
          {"resources", {{"cpus", 1}}}};
}

std::string shared_data_dir() {
  const char* env = std::getenv("KDX_DATA_DIR");
  std::string dir = env && *env ? env : std::string(KDX_SOURCE_DIR) + "/../shared/data";
  return file_exists(dir + "/runne/train.jsonl") ? dir : "";
}

}  // namespace kdx::test

namespace kdx::test {

std::string navec_tar() {
  if (const char* env = std::getenv("KDX_NAVEC"); env && *env) return env;
  const char* cache = std::getenv("KDX_CACHE");
  const char* home = std::getenv("HOME");
  std::string dir = cache && *cache ? cache : std::string(home ? home : "/root") + "/.cache/kdx";
  return dir + "/navec/navec_news_v1_1B_250K_300d_100q.tar";
}

}  // namespace kdx::test

namespace kdx::test {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace kdx::test
