#include "common/error.h"

#include <fstream>
#include <sstream>

namespace kdx {
namespace {

std::string nth_line(const std::string& text, int line) {
  std::istringstream in(text);
  std::string s;
  for (int i = 1; std::getline(in, s); ++i)
    if (i == line) return s;
  return {};
}

}  // namespace

std::string format_source_error(const SourceLocation& loc, const std::string& message,
                                const std::string* text) {
  std::string out = loc.file;
  if (loc.line > 0) out += ":" + std::to_string(loc.line);
  if (loc.line > 0 && loc.column > 0) out += ":" + std::to_string(loc.column);
  out += ": " + message;
  if (loc.line <= 0) return out;
  std::string line;
  if (text) {
    line = nth_line(*text, loc.line);
  } else {
    std::ifstream in(loc.file);
    std::stringstream ss;
    ss << in.rdbuf();
    line = nth_line(ss.str(), loc.line);
  }
  if (line.empty()) return out;
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  out += "\n  " + line;
  if (loc.column > 0 && static_cast<size_t>(loc.column) <= line.size() + 1)
    out += "\n  " + std::string(static_cast<size_t>(loc.column - 1), ' ') + "^";
  return out;
}

void throw_at(const SourceLocation& loc, const std::string& message, const std::string* text) {
  throw Error(format_source_error(loc, message, text));
}

}  // namespace kdx
