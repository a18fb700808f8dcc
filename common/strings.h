// Small string helpers shared by the orchestrator and the worker.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kdx {

std::vector<std::string> split(const std::string& s, char sep);
std::string join(const std::vector<std::string>& parts, const std::string& sep);
std::string trim(const std::string& s);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
// Replaces each OPEN name CLOSE in `text` by lookup(name); a name lookup() answers with
// nullopt stays as written. `literal` transforms the text between fields (e.g. shell quoting).
// The one mechanism behind {{template}} fields, ${ENV} paths and {run_json} placeholders.
std::string replace_fields(
    const std::string& text, const std::string& open, const std::string& close,
    const std::function<std::optional<std::string>(const std::string&)>& lookup,
    const std::function<std::string(const std::string&)>& literal = nullptr);

// The byte offset of the first byte that is not part of well-formed UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF included), or std::string::npos.
size_t find_invalid_utf8(const std::string& s);

// "1h02m", "3m05s", "12s": for humans, not for parsing back.
std::string format_duration(double seconds);

}  // namespace kdx
