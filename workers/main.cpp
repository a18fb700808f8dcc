#include "workers/worker_cli.h"

int main(int argc, char** argv) {
  return kdx::worker_main(argc, argv);
}
