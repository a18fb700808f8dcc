#include "orchestrator/cli.h"

int main(int argc, char** argv) {
  return kdx::kdx_main(argc, argv);
}
