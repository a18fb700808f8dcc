// Reading a file that came from outside kdx's control (an experiment, a data set, a run's
// result.json, weights): one way to open them all, so that a FIFO cannot hang a command,
// /dev/zero cannot fill memory, and a 50 MB "metric" cannot grow the registry. Only regular
// files are read (symbolic links to them are followed); each kind of input has a size cap
// that the message names, and an environment variable raises it for users whose inputs are
// legitimately large (a transfer corpus of several GB).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace kdx {

enum class InputKind {
  Record,   // run.json, result.json, model.json, progress, exit files: 16 MiB (KDX_MAX_RECORD_SIZE)
  Spec,     // experiment YAML, sbatch templates: 16 MiB (KDX_MAX_SPEC_SIZE)
  Data,     // data sets, vocabularies, tokenizers, predictions, logs: 4 GiB (KDX_MAX_DATA_SIZE)
  Weights,  // safetensors, checkpoints, logits caches: 256 GiB (KDX_MAX_WEIGHTS_SIZE)
};

// The cap in bytes: the kind's default, or its environment variable ("8G", "500M", bytes).
// Throws kdx::Error when the variable is set to something that is not a size.
std::uint64_t input_cap(InputKind kind);
// "KDX_MAX_DATA_SIZE" etc.
const char* input_cap_variable(InputKind kind);
// "1.5 GiB", "16 MiB", "812 bytes".
std::string format_bytes(std::uint64_t bytes);
// "500M", "4G", "1T", "123" (bytes), "16K"; -1 when not a size or when it overflows.
long long parse_byte_size(const std::string& text);

// Throws kdx::Error "<path>: not a regular file (a FIFO)" / "<path>: 5.0 GiB is more than
// the 4 GiB limit for data files (set KDX_MAX_DATA_SIZE to raise it)" / "cannot read <path>:
// <errno>" unless `path` is a regular file within its kind's cap. Returns its size.
std::uint64_t check_input(const std::string& path, InputKind kind);

// The whole file, after check_input(); never reads past the cap even when the file grows.
std::string read_input(const std::string& path, InputKind kind);

// True when `path` names a regular file (following symbolic links): readers of files a run
// writes for itself (logs, metrics.jsonl, exit files) treat anything else as absent.
bool is_regular_file(const std::string& path);

// An ifstream on the file, after check_input(): for readers that go line by line.
std::ifstream open_input(const std::string& path, InputKind kind);

}  // namespace kdx
