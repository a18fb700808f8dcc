// safetensors files (teacher checkpoints, student weights): header and every tensor.
#include "common/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "workers/models/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = kdx::fuzz::write_scratch(data, size, ".safetensors");
  try {
    for (auto& [name, t] : kdx::models::read_safetensors(path)) {
      try {
        kdx::models::to_float32(t, name);
      } catch (const kdx::Error&) {
      }
    }
  } catch (const kdx::Error&) {
  }
  return 0;
}
