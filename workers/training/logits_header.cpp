#include "workers/training/logits_header.h"

#include <cstring>

#include "common/error.h"
#include "common/json_io.h"

namespace kdx::training {

LogitsHeader parse_logits_header(const char* data, size_t size, const std::string& path) {
  static const char kMagic[8] = {'K', 'D', 'X', 'L', 'O', 'G', '0', '1'};
  if (size < 16 || std::memcmp(data, kMagic, 8) != 0)
    throw Error(path + ": not a kdx logits cache");
  uint64_t n;
  std::memcpy(&n, data + 8, 8);
  if (n > size - 16) throw Error(path + ": truncated logits cache (header runs past the end)");
  auto h = parse_json(std::string(data + 16, n));
  auto bad = [&](const std::string& what) {
    return Error(path + ": corrupt logits cache header: " + what);
  };
  if (!h.is_object()) throw bad("not a JSON object");
  LogitsHeader out;
  if (!h.contains("key") || !h["key"].is_string()) throw bad("no key");
  out.key = h["key"].get<std::string>();
  if (!h.contains("width") || !h["width"].is_number_integer() || h["width"].get<int64_t>() < 1 ||
      h["width"].get<int64_t>() > 1000000)
    throw bad("width must be an integer between 1 and 1000000");
  out.width = static_cast<int>(h["width"].get<int64_t>());
  if (!h.contains("dtype") || (h["dtype"] != "fp16" && h["dtype"] != "fp32"))
    throw bad("dtype must be fp16 or fp32");
  out.fp16 = h["dtype"] == "fp16";
  if (!h.contains("rows") || !h["rows"].is_number_integer() || h["rows"].get<int64_t>() < 0)
    throw bad("rows must be a non-negative integer");
  out.rows = h["rows"].get<int64_t>();
  for (auto [name, vec] : {std::pair{"offsets", &out.offsets}, {"lengths", &out.lengths}}) {
    if (!h.contains(name) || !h[name].is_array()) throw bad(std::string(name) + " must be a list");
    for (auto& v : h[name]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        throw bad(std::string(name) + " must hold non-negative integers");
      vec->push_back(v.get<int64_t>());
    }
  }
  if (out.offsets.size() != out.lengths.size()) throw bad("offsets and lengths differ in count");
  for (size_t i = 0; i < out.offsets.size(); ++i)
    if (out.offsets[i] > out.rows || out.lengths[i] > out.rows - out.offsets[i])
      throw bad("example " + std::to_string(i) + " runs past the last row");
  // Sizes in 128 bits: a hostile rows/width must not wrap into a plausible file size.
  const unsigned __int128 elem = out.fp16 ? 2 : 4;
  const unsigned __int128 ids_start = 16 + static_cast<unsigned __int128>(n);
  const unsigned __int128 data_start = ids_start + static_cast<unsigned __int128>(out.rows) * 4;
  const unsigned __int128 need = data_start + static_cast<unsigned __int128>(out.rows) *
                                                  static_cast<unsigned>(out.width) * elem;
  if (need != size)
    throw Error(path + ": truncated logits cache (" + std::to_string(size) + " bytes, expected " +
                (need > static_cast<unsigned __int128>(UINT64_MAX)
                     ? std::string("more than 2^64")
                     : std::to_string(static_cast<uint64_t>(need))) +
                ")");
  out.ids_start = static_cast<size_t>(ids_start);
  out.data_start = static_cast<size_t>(data_start);
  return out;
}

}  // namespace kdx::training
