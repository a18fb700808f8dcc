#include "orchestrator/yaml_reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "common/strings.h"

namespace kdx {

YamlReader::YamlReader(std::string file, std::string text)
    : file_(std::move(file)), text_(std::move(text)) {
  // Every string of a spec ends up in JSON (run.json, run ids), which is UTF-8 only.
  if (size_t bad = find_invalid_utf8(text_); bad != std::string::npos) {
    size_t line_start = text_.rfind('\n', bad == 0 ? 0 : bad - 1);
    line_start = line_start == std::string::npos || bad == 0 ? 0 : line_start + 1;
    int line = 1 + static_cast<int>(
                       std::count(text_.begin(), text_.begin() + static_cast<long>(bad), '\n'));
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text_[bad]));
    SourceLocation loc{file_, line, static_cast<int>(bad - line_start) + 1};
    throw_at(loc, std::string("not valid UTF-8 (byte ") + byte + ")", &text_);
  }
  check_single_document();
  try {
    root_ = YAML::Load(text_);
  } catch (const YAML::ParserException& e) {
    SourceLocation loc{file_, e.mark.line + 1, e.mark.column + 1};
    throw_at(loc, "invalid YAML: " + e.msg, &text_);
  } catch (const YAML::Exception& e) {
    SourceLocation loc{file_, e.mark.line + 1, e.mark.column + 1};
    throw_at(loc, "invalid YAML: " + e.msg, &text_);
  }
  long budget = kMaxValues;
  check_structure(root_, "", 0, budget);
}

// One experiment per file: a second document would otherwise be dropped without a word, and
// it may hold the value the user meant. Found in the text, not with YAML::LoadAll, which
// yaml-cpp 0.7 never returns from on some inputs (a lone ",": found by fuzz_spec_yaml). A line
// "---" or "..." at column 0 after content starts another document; one followed only by
// blank lines and comments (a trailing "---") is harmless.
void YamlReader::check_single_document() const {
  bool content = false, ended = false;
  int ln = 0;
  size_t start = 0;
  while (start <= text_.size()) {
    size_t end = text_.find('\n', start);
    if (end == std::string::npos) end = text_.size();
    std::string line = text_.substr(start, end - start);
    ++ln;
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    bool marker = (line.rfind("---", 0) == 0 || line.rfind("...", 0) == 0) &&
                  (line.size() == 3 || line[3] == ' ' || line[3] == '\t');
    std::string rest = trim(marker ? line.substr(3) : line);
    bool has_content = !rest.empty() && rest[0] != '#' && rest[0] != '%';
    if (marker && content) ended = true;
    if (ended && has_content) {
      SourceLocation loc{file_, ln, marker ? static_cast<int>(line.find(rest)) + 1 : 1};
      throw_at(loc,
               "a second YAML document: an experiment file holds one (remove the '---' above "
               "it, or put it in a file of its own)",
               &text_);
    }
    content = content || has_content;
    if (end == text_.size()) break;
  }
}

// Before anything reads the document: aliases make a small file stand for a huge tree
// (each use of an anchor is the whole subtree again), so the walk that every later step
// repeats is bounded here; a key may appear once per mapping, as a plain scalar.
void YamlReader::check_structure(const YAML::Node& node, const std::string& path, int depth,
                                 long& budget) const {
  if (--budget < 0)
    fail(node, path,
         "the document expands to more than " + std::to_string(kMaxValues) +
             " values (YAML aliases repeat their anchor's whole subtree); write it out");
  if (depth > kMaxDepth)
    fail(node, path, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  if (node.IsSequence()) {
    size_t i = 0;
    for (auto&& item : node)
      check_structure(item, path + "[" + std::to_string(i++) + "]", depth + 1, budget);
  } else if (node.IsMap()) {
    std::map<std::string, YAML::Node> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar())
        fail(it->first, path,
             "a key must be a plain name, not " + std::string(it->first.IsMap()        ? "a mapping"
                                                              : it->first.IsSequence() ? "a list"
                                                                                       : "empty"));
      std::string key = it->first.Scalar();
      std::string kpath = path.empty() ? key : path + "." + key;
      if (auto prev = seen.find(key); prev != seen.end()) {
        auto first = where(prev->second);
        fail(it->first, kpath,
             "duplicate key (first at line " + std::to_string(first.line) + ", column " +
                 std::to_string(first.column) + ")");
      }
      seen.emplace(key, it->first);
      check_structure(it->second, kpath, depth + 1, budget);
    }
  } else if (node.IsScalar() && node.Scalar().find('\0') != std::string::npos) {
    fail(node, path, "contains a NUL character");
  }
}

SourceLocation YamlReader::where(const YAML::Node& node) const {
  auto m = node.Mark();
  if (m.is_null()) return {file_, 0, 0};
  return {file_, m.line + 1, m.column + 1};
}

void YamlReader::fail(const YAML::Node& node, const std::string& path,
                      const std::string& message) const {
  throw_at(where(node), path.empty() ? message : path + ": " + message, &text_);
}

namespace {

std::string kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined value";
  }
}

}  // namespace

void YamlReader::expect_map(const YAML::Node& node, const std::string& path) const {
  if (!node.IsMap()) fail(node, path, "expected a mapping, got " + kind_of(node));
}

void YamlReader::expect_seq(const YAML::Node& node, const std::string& path) const {
  if (!node.IsSequence()) fail(node, path, "expected a list, got " + kind_of(node));
}

void YamlReader::check_keys(const YAML::Node& map, const std::string& path,
                            const std::vector<std::string>& allowed) const {
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string key = it->first.as<std::string>();
    bool ok = false;
    for (auto& a : allowed) ok = ok || a == key;
    if (!ok) {
      std::string full = path.empty() ? key : path + "." + key;
      fail(it->first, full, "unknown key (expected one of: " + join(allowed, ", ") + ")");
    }
  }
}

std::string YamlReader::get_string(const YAML::Node& node, const std::string& path) const {
  if (!node.IsScalar()) fail(node, path, "expected a string, got " + kind_of(node));
  return node.Scalar();
}

long YamlReader::get_int(const YAML::Node& node, const std::string& path) const {
  auto j = to_json(node, path);
  if (!j.is_number_integer()) fail(node, path, "expected an integer, got '" + node.Scalar() + "'");
  return j.get<long>();
}

nlohmann::json YamlReader::to_json(const YAML::Node& node, const std::string& path) const {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Sequence: {
      auto out = nlohmann::json::array();
      size_t i = 0;
      for (auto&& item : node) out.push_back(to_json(item, path + "[" + std::to_string(i++) + "]"));
      return out;
    }
    case YAML::NodeType::Map: {
      auto out = nlohmann::json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string k = it->first.as<std::string>();
        out[k] = to_json(it->second, path.empty() ? k : path + "." + k);
      }
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted: always a string
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
      // YAML's .nan/.inf would reach JSON as null; no parameter can take them.
      for (const char* special : {".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf",
                                  "+.INF", "-.inf", "-.Inf", "-.INF"})
        if (s == special) fail(node, path, "must be a finite number, got " + s);
      if (!s.empty()) {
        errno = 0;
        char* end = nullptr;
        long long ll = std::strtoll(s.c_str(), &end, 10);
        if (errno == 0 && end && *end == '\0') return ll;
        errno = 0;
        double d = std::strtod(s.c_str(), &end);
        bool numeric_start =
            (s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || s[0] == '.';
        bool whole = end && *end == '\0' && numeric_start;
        if (whole && (!std::isfinite(d) || (errno == ERANGE && std::fabs(d) > 1)))
          fail(node, path, "must be a finite number, got " + s);
        if (errno == 0 && whole) return d;
      }
      return s;
    }
    default:
      fail(node, path, "undefined value");
  }
}

}  // namespace kdx
