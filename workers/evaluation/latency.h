// Latency of the code a user would deploy (tagger->infer()): median wall time of `runs`
// calls after `warmup` calls, on random ids of `tokens` tokens, on the execution's device
// (the tagger must be there) under its autocast; a GPU is synchronised around each call.
#pragma once

#include "workers/models/tagger.h"
#include "workers/runtime/execution.h"

namespace kdx::evaluation {

struct Latency {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  int batch = 1, tokens = 128, runs = 0, threads = 1;
};

Latency measure_latency(models::TaggerImpl& tagger, int vocab_size, int batch, int tokens = 128,
                        int runs = 20, int warmup = 3, const runtime::Execution& exec = {});

}  // namespace kdx::evaluation
