// Errors that reach the user. Every message names where the problem is: a file and
// line for input files (ninja's "file:line: message" plus the offending line), a
// path for I/O, a key path for configuration fields.
#pragma once

#include <stdexcept>
#include <string>

namespace kdx {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A position inside a text file; line and column are 1-based, 0 = unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

// "file:line:col: message" followed by the offending line and a caret under the column,
// when the line can be read from `text` (the file's content) or from disk.
std::string format_source_error(const SourceLocation& loc, const std::string& message,
                                const std::string* text = nullptr);

// Throws Error(format_source_error(...)).
[[noreturn]] void throw_at(const SourceLocation& loc, const std::string& message,
                           const std::string* text = nullptr);

}  // namespace kdx
