// A small real program that speaks the worker's file protocol (run.json in, result.json
// out, atomically), for orchestrator tests that must not depend on LibTorch training.
// Behaviour is driven by the run's params so a test can predict every outcome:
//   seed == 666      -> prints an error and exits 3
//   seed == 777      -> sleeps until killed (for cancel and time-limit tests)
//   otherwise        -> sleeps KDX_TOY_SLEEP_MS (default 50) and reports f1 = hidden / (hidden +
//   100)
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--spec") {
    std::cerr << "usage: toy_worker --spec run.json\n";
    return 2;
  }
  auto spec = nlohmann::json::parse(kdx::read_file(argv[2]));
  auto& p = spec["params"];
  long seed = p.value("seed", 0L);
  std::cout << "toy worker: run " << spec["id"].get<std::string>() << " stage "
            << spec["stage"].get<std::string>() << std::endl;
  if (seed == 666) {
    std::cerr << "toy worker: seed 666 is cursed" << std::endl;
    return 3;
  }
  if (seed == 777)
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  const char* ms = std::getenv("KDX_TOY_SLEEP_MS");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms ? std::atoi(ms) : 50));
  double hidden = p.value("hidden", 100.0);
  nlohmann::json result = {
      {"status", "ok"},
      {"metrics", {{"f1", hidden / (hidden + 100.0)}, {"params", hidden * 1000}}}};
  kdx::write_file_atomic(spec["run_dir"].get<std::string>() + "/result.json", result.dump(2));
  return 0;
}
