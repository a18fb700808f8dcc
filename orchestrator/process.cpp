#include "orchestrator/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "orchestrator/registry.h"

namespace kdx {
namespace {

// Only async-signal-safe calls between fork and exec.
[[noreturn]] void exec_worker(const LaunchSpec& spec, char** argv, int err_fd) {
  ::setpgid(0, 0);
  int out = ::open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int err = ::open(spec.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int in = ::open("/dev/null", O_RDONLY);
  if (out < 0 || err < 0 || in < 0) {
    int e = errno;
    (void)!::write(err_fd, &e, sizeof e);
    ::_exit(127);
  }
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
    int e = errno;
    (void)!::write(err_fd, &e, sizeof e);
    ::_exit(127);
  }
  ::execvp(argv[0], argv);
  int e = errno;
  (void)!::write(err_fd, &e, sizeof e);
  ::_exit(127);
}

}  // namespace

Launched launch_detached(const LaunchSpec& spec) {
  if (spec.argv.empty()) throw Error("launch: empty command");
  // Prepared before fork: the children must not allocate.
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int info[2];  // supervisor -> kdx: worker pid, then exec errno (if any)
  if (::pipe2(info, O_CLOEXEC) != 0)
    throw Error(std::string("launch: pipe: ") + std::strerror(errno));

  pid_t sup = ::fork();
  if (sup < 0) throw Error(std::string("launch: fork: ") + std::strerror(errno));
  if (sup == 0) {
    ::close(info[0]);
    // The supervisor outlives kdx: it must not keep kdx's descriptors (the registry, and the
    // scheduler's lock, whose flock would otherwise stay held while this worker runs).
    if (info[1] > 3) ::close_range(3, static_cast<unsigned>(info[1]) - 1, 0);
    ::close_range(static_cast<unsigned>(info[1]) + 1, ~0U, 0);
    ::setsid();  // survives kdx's terminal and kdx itself
    for (auto& [k, v] : spec.env) ::setenv(k.c_str(), v.c_str(), 1);
    int exec_err[2];
    if (::pipe2(exec_err, O_CLOEXEC) != 0) ::_exit(126);
    pid_t w = ::fork();
    if (w < 0) ::_exit(126);
    if (w == 0) {
      ::close(exec_err[0]);
      exec_worker(spec, argv.data(), exec_err[1]);
    }
    ::close(exec_err[1]);
    int e = 0;
    ssize_t n = ::read(exec_err[0], &e, sizeof e);  // EOF (0 bytes) = exec succeeded
    ::close(exec_err[0]);
    pid_t report[2] = {w, n == sizeof e ? e : 0};
    (void)!::write(info[1], report, sizeof report);
    ::close(info[1]);
    int status = 0;
    while (::waitpid(w, &status, 0) < 0 && errno == EINTR) {
    }
    nlohmann::json j;
    if (WIFEXITED(status)) j["exit_code"] = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) j["signal"] = WTERMSIG(status);
    if (n == sizeof e) j["exec_error"] = std::strerror(e);
    j["end_time"] = now_seconds();
    try {
      write_file_atomic(spec.exit_path, j.dump() + "\n");
    } catch (...) {
      ::_exit(125);
    }
    ::_exit(0);
  }
  ::close(info[1]);
  pid_t report[2] = {0, 0};
  ssize_t n;
  while ((n = ::read(info[0], report, sizeof report)) < 0 && errno == EINTR) {
  }
  ::close(info[0]);
  if (n != sizeof report) throw Error("launch: supervisor died before starting " + spec.argv[0]);
  if (report[1] != 0) throw Error("cannot run '" + spec.argv[0] + "': " + std::strerror(report[1]));
  Launched l;
  l.supervisor = sup;
  l.worker = report[0];
  l.worker_start = process_start_ticks(l.worker);
  return l;
}

std::optional<ExitStatus> read_exit_status(const std::string& exit_path) {
  if (!is_regular_file(exit_path)) return std::nullopt;
  std::ifstream in(exit_path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = parse_json(ss.str());
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ExitStatus s;
  if (j.contains("exit_code")) s.exit_code = j["exit_code"].get<int>();
  if (j.contains("signal")) s.signal = j["signal"].get<int>();
  s.end_time = j.value("end_time", 0.0);
  return s;
}

long long process_start_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return 0;
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  auto close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  // Field 3 is the state; starttime is field 22, i.e. the 20th after the state.
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::atoll(field.c_str());
  return 0;
}

bool process_alive(pid_t pid, long long start_ticks) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  if (close == std::string::npos || close + 2 >= content.size()) return false;
  char st = content[close + 2];
  if (st == 'Z' || st == 'X') return false;
  return start_ticks == 0 || process_start_ticks(pid) == start_ticks;
}

void reap_children() {
  int status;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
}

}  // namespace kdx
