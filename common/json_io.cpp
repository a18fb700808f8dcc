#include "common/json_io.h"

#include "common/atomic_file.h"
#include "common/error.h"

namespace kdx {

nlohmann::json parse_json(const std::string& text, std::string* error) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        if (error) *error = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
        return nlohmann::json::value_t::discarded;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() && error) *error = "not valid JSON";
  return j;
}

nlohmann::json read_json_file(const std::string& path) {
  std::string error;
  auto j = parse_json(read_file(path), &error);
  if (j.is_discarded()) throw Error(path + ": " + error);
  return j;
}

}  // namespace kdx
