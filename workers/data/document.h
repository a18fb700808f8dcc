// The one document model every reader fills: text plus character-span entities.
// Offsets count Unicode code points (as Python's str does, which is what the
// datasets' offsets mean), never bytes; `end` is exclusive.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kdx::data {

struct Entity {
  // 64-bit: a prediction file may hold any offset, and must be scored, not wrapped.
  int64_t start = 0;
  int64_t end = 0;  // exclusive
  std::string type;
  bool operator==(const Entity& o) const {
    return start == o.start && end == o.end && type == o.type;
  }
  bool operator<(const Entity& o) const {
    if (start != o.start) return start < o.start;
    if (end != o.end) return end < o.end;
    return type < o.type;
  }
};

struct Document {
  std::string id;
  std::u32string text;
  std::vector<Entity> entities;
};

// Decodes UTF-8; throws kdx::Error("<where>: invalid UTF-8 at byte N") on malformed input.
std::u32string decode_utf8(const std::string& bytes, const std::string& where);
std::string encode_utf8(const std::u32string& text);
std::string encode_utf8(char32_t c);

}  // namespace kdx::data
