// Shared by the fuzz targets: a private scratch file per process (the readers take paths),
// and the rule every target checks: outside input may only ever end in kdx::Error.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

namespace kdx::fuzz {

inline std::string scratch(const std::string& suffix) {
  // Removed when the fuzzer exits normally (after -runs=N or -max_total_time).
  struct Cleanup {
    std::set<std::string> paths;
    ~Cleanup() {
      for (auto& p : paths) std::remove(p.c_str());
    }
  };
  static Cleanup cleanup;
  std::string path = "/tmp/kdx-fuzz-" + std::to_string(::getpid()) + suffix;
  cleanup.paths.insert(path);
  return path;
}

inline std::string write_scratch(const uint8_t* data, size_t size, const std::string& suffix) {
  std::string path = scratch(suffix);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace kdx::fuzz
