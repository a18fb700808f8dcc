// Run and attempt states, shared by every executor. Executors keep their own raw
// state string beside these (Slurm's "NODE_FAIL", the local executor's "signal 9").
#pragma once

#include <string>

namespace kdx::state {

inline const std::string kPending = "PENDING";
inline const std::string kRunning = "RUNNING";
inline const std::string kCompleted = "COMPLETED";
inline const std::string kFailed = "FAILED";
inline const std::string kTimeout = "TIMEOUT";
inline const std::string kCancelled = "CANCELLED";
inline const std::string kPreempted = "PREEMPTED";
inline const std::string kOutOfMemory = "OUT_OF_MEMORY";

inline bool is_active(const std::string& s) {
  return s == kPending || s == kRunning;
}
// The states `kdx resubmit --failed` gives a new attempt.
inline bool is_retryable(const std::string& s) {
  return s == kFailed || s == kTimeout || s == kCancelled || s == kPreempted || s == kOutOfMemory;
}

}  // namespace kdx::state
