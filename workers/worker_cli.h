// The kdx-worker command line; main.cpp only calls worker_main() so tests can drive it.
#pragma once

namespace kdx {

int worker_main(int argc, char** argv);

// The environment variables of students' CPU inference, as a --help footer (kdx-worker and
// kdx-tag both run it).
extern const char* const kInferenceEnvironmentHelp;

}  // namespace kdx
