// run.json as the worker reads it (params checked against the stage's table).
#include "common/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "workers/training/run_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = kdx::fuzz::write_scratch(data, size, "-run.json");
  try {
    auto spec = kdx::training::read_run_spec(path);
    for (auto& [k, v] : spec.params.items())
      if (v.is_number()) spec.param_int64(k);
  } catch (const kdx::Error&) {
  }
  return 0;
}
