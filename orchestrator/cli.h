// The kdx command line. main.cpp only calls kdx_main(), so tests can drive it in-process.
#pragma once

namespace kdx {

int kdx_main(int argc, char** argv);

}  // namespace kdx
