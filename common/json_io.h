// JSON that kdx reads from disk (run.json, result.json, metrics, headers of binary files,
// prediction files): nesting is bounded before nlohmann's parser sees the text, whose
// recursive values would otherwise overflow the stack on a hostile or broken file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace kdx {

constexpr int kMaxJsonDepth = 128;

// The parsed value, or a discarded one (is_discarded()) when `text` is not JSON or nests
// deeper than kMaxJsonDepth; `error`, when given, says which.
nlohmann::json parse_json(const std::string& text, std::string* error = nullptr);

// Reads and parses a file; throws kdx::Error "<path>: <reason>" when it cannot.
nlohmann::json read_json_file(const std::string& path);

}  // namespace kdx
