// The experiment reader and planner on arbitrary bytes: a kdx::Error or a plan, nothing else.
#include "common/error.h"
#include "orchestrator/planner.h"
#include "orchestrator/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kdx::SpecOptions o;
  o.check_data_files = false;
  o.data_dir = "/nonexistent-data";
  try {
    auto spec = kdx::parse_spec_text(std::string(reinterpret_cast<const char*>(data), size),
                                     "fuzz.yaml", o);
    kdx::make_plan(spec, "/tmp/kdx-fuzz-results");
  } catch (const kdx::Error&) {
  }
  return 0;
}
