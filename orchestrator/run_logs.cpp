#include "orchestrator/run_logs.h"

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"

namespace kdx {

std::string attempt_log_path(const RunRecord& run, const AttemptRecord& a) {
  if (a.executor == "slurm") return run.run_dir + "/logs/slurm-" + a.job_id + ".out";
  return run.run_dir + "/logs/attempt-" + std::to_string(a.number) + ".log";
}

std::string lines_of_rank(const std::string& text, int rank) {
  static const std::regex tag(" rank ([0-9]+)/[0-9]+: ");
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, tag) && std::stoi(m[1]) != rank) continue;
    out += line + "\n";
  }
  return out;
}

void print_log(std::ostream& out, const std::string& path, const FollowOptions& o) {
  size_t offset = 0;
  std::string pending;  // a partial last line, held until its newline arrives (rank filter)
  auto emit = [&](bool final) {
    if (!is_regular_file(path)) return;
    std::ifstream in(path, std::ios::binary);
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(offset));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset += chunk.size();
    pending += chunk;
    size_t cut = final ? pending.size() : pending.rfind('\n') + 1;
    if (pending.rfind('\n') == std::string::npos && !final) cut = 0;
    std::string whole = pending.substr(0, cut);
    pending.erase(0, cut);
    out << (o.rank >= 0 ? lines_of_rank(whole, o.rank) : whole) << std::flush;
  };
  bool running = o.still_running && o.still_running();
  if (!file_exists(path) && !(o.follow && running))
    throw Error(path + ": no log yet" + (running ? " (the run has not started writing)" : ""));
  emit(!o.follow);
  while (o.follow) {
    running = o.still_running && o.still_running();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.poll_s));
    emit(!running);
    if (!running) break;
  }
}

}  // namespace kdx
