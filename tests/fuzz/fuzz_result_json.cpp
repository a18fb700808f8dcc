// result.json as kdx ingests it: parse (bounded nesting), then the schema check.
#include "common/json_io.h"
#include "orchestrator/result_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  auto j = kdx::parse_json(std::string(reinterpret_cast<const char*>(data), size), &error);
  kdx::check_result(j, "0123456789ab");
  return 0;
}
