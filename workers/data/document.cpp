#include "workers/data/document.h"

#include <utf8proc.h>

#include "common/error.h"

namespace kdx::data {

std::u32string decode_utf8(const std::string& bytes, const std::string& where) {
  std::u32string out;
  out.reserve(bytes.size());
  auto p = reinterpret_cast<const utf8proc_uint8_t*>(bytes.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(bytes.size()), pos = 0;
  while (pos < left) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p + pos, left - pos, &cp);
    if (n < 0)
      throw Error(where + ": invalid UTF-8 at byte " + std::to_string(pos) +
                  " (the file must be UTF-8)");
    out.push_back(static_cast<char32_t>(cp));
    pos += n;
  }
  return out;
}

std::string encode_utf8(char32_t c) {
  utf8proc_uint8_t buf[4];
  auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  return std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char32_t c : text) out += encode_utf8(c);
  return out;
}

}  // namespace kdx::data
