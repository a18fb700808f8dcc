#include "workers/distributed/launcher.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"

namespace kdx::distributed {
namespace {

std::vector<pid_t> g_children;
volatile sig_atomic_t g_forwarded = 0;  // the last signal passed on to the ranks

void forward(int sig) {
  g_forwarded = sig;
  for (pid_t p : g_children) ::kill(p, sig);
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 29500;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

int launch_local_ranks(int argc, char** argv, int nproc) {
  // The same command line without --nproc N.
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--nproc") {
      ++i;
      continue;
    }
    if (a.rfind("--nproc=", 0) == 0) continue;
    args.push_back(a);
  }
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string exe = n > 0 ? std::string(self, static_cast<size_t>(n)) : args[0];
  int port = free_port();
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> cargs;
      for (auto& a : args) cargs.push_back(const_cast<char*>(a.c_str()));
      cargs.push_back(nullptr);
      ::execv(exe.c_str(), cargs.data());
      std::perror("kdx-worker: exec");
      ::_exit(127);
    }
    g_children.push_back(pid);
  }
  ::signal(SIGTERM, forward);
  ::signal(SIGUSR1, forward);
  ::signal(SIGINT, forward);
  int result = 0;
  size_t alive = g_children.size();
  bool stopping = false;
  auto deadline = std::chrono::steady_clock::now();
  while (alive > 0) {
    int status = 0;
    pid_t p = ::waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      --alive;
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      size_t rank = 0;
      for (size_t r = 0; r < g_children.size(); ++r)
        if (g_children[r] == p) {
          g_children[r] = -1;
          rank = r;
        }
      if (code != 0 && result == 0) {
        result = code;
        if (int sig = g_forwarded) {
          // Every rank got the signal (a Slurm preemption, a user's stop): an orderly stop,
          // not a failure, and no second signal that would cut the others' checkpoints short.
          spdlog::info("rank {} stopped (exit {}) on signal {}, passed on by the launcher", rank,
                       code, sig);
          stopping = true;
        } else if (!stopping) {
          spdlog::error("rank {} exited with {}; stopping the others", rank, code);
          stopping = true;
          deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          for (pid_t c : g_children)
            if (c > 0) ::kill(c, SIGTERM);
        }
      }
      continue;
    }
    if (stopping && !g_forwarded && std::chrono::steady_clock::now() > deadline)
      for (pid_t c : g_children)
        if (c > 0) ::kill(c, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

}  // namespace kdx::distributed
