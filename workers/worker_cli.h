// The kdx-worker command line; main.cpp only calls worker_main() so tests can drive it.
#pragma once

namespace kdx {

int worker_main(int argc, char** argv);

}  // namespace kdx
