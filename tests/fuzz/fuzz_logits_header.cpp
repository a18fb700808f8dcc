// The teacher-logits cache header: every offset checked against the file's size.
#include "common/error.h"
#include "workers/training/logits_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto h = kdx::training::parse_logits_header(reinterpret_cast<const char*>(data), size, "fuzz");
    // What LogitsCache::get reads must lie inside the buffer.
    for (size_t i = 0; i < h.offsets.size(); ++i) {
      size_t ids_end = h.ids_start + static_cast<size_t>(h.offsets[i] + h.lengths[i]) * 4;
      size_t elem = h.fp16 ? 2 : 4;
      size_t rows_end = h.data_start + static_cast<size_t>(h.offsets[i] + h.lengths[i]) *
                                           static_cast<size_t>(h.width) * elem;
      if (ids_end > size || rows_end > size) __builtin_trap();
    }
  } catch (const kdx::Error&) {
  }
  return 0;
}
