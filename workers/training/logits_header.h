// The header of a teacher-logits cache (logits.bin), parsed and bounds-checked without
// torch: magic "KDXLOG01", a u64 header length, a JSON header {key, width, dtype, offsets,
// lengths, rows}, then int32 token ids of every row and the rows' logits. Every offset and
// length is checked against the file's size before anything is read through them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kdx::training {

struct LogitsHeader {
  std::string key;
  int width = 0;
  bool fp16 = false;
  std::vector<int64_t> offsets, lengths;  // per example, in rows
  int64_t rows = 0;
  size_t ids_start = 0, data_start = 0;  // byte offsets in the file
};

// Throws kdx::Error "<path>: ..." for anything that does not add up.
LogitsHeader parse_logits_header(const char* data, size_t size, const std::string& path);

}  // namespace kdx::training
