#include "common/json_io.h"

#include <set>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"

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
  // A key given twice is refused, not resolved (nlohmann keeps the last): {"f1":0.9,"f1":0.1}
  // has no one meaning. Keys are tracked per open object.
  struct Duplicate {
    std::string key;
  };
  std::vector<std::set<std::string>> open;
  auto on_event = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      open.emplace_back();
    } else if (event == E::object_end) {
      if (!open.empty()) open.pop_back();
    } else if (event == E::key && !open.empty() && parsed.is_string()) {
      if (!open.back().insert(parsed.get<std::string>()).second)
        throw Duplicate{parsed.get<std::string>()};
    }
    return true;
  };
  try {
    auto j = nlohmann::json::parse(text, on_event, false);
    if (j.is_discarded() && error) *error = "not valid JSON";
    return j;
  } catch (const Duplicate& d) {
    if (error) *error = "duplicate key \"" + d.key.substr(0, 200) + "\"";
    return nlohmann::json::value_t::discarded;
  }
}

nlohmann::json read_json_file(const std::string& path) {
  std::string error;
  auto j = parse_json(read_input(path, InputKind::Record), &error);
  if (j.is_discarded()) throw Error(path + ": " + error);
  return j;
}

}  // namespace kdx
