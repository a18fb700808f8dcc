// Typed access to a YAML document that turns every mismatch into
// "file:line:col: key.path: message" plus the offending line. The document is checked
// when read: bounded size after alias expansion and depth, unique keys, plain-name keys,
// no NUL characters.
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"

namespace kdx {

class YamlReader {
 public:
  YamlReader(std::string file, std::string text);
  YAML::Node root() const { return root_; }

  SourceLocation where(const YAML::Node& node) const;
  [[noreturn]] void fail(const YAML::Node& node, const std::string& path,
                         const std::string& message) const;

  void expect_map(const YAML::Node& node, const std::string& path) const;
  void expect_seq(const YAML::Node& node, const std::string& path) const;
  // Fails on the first key not in `allowed`, pointing at that key.
  void check_keys(const YAML::Node& map, const std::string& path,
                  const std::vector<std::string>& allowed) const;

  std::string get_string(const YAML::Node& node, const std::string& path) const;
  long get_int(const YAML::Node& node, const std::string& path) const;
  // A YAML value as JSON: plain scalars become numbers/booleans/null where they parse.
  nlohmann::json to_json(const YAML::Node& node, const std::string& path) const;

  const std::string& file() const { return file_; }
  // Bounds on the document, checked when it is read.
  static constexpr long kMaxValues = 200000;
  static constexpr int kMaxDepth = 64;
  const std::string& text() const { return text_; }

 private:
  void check_single_document() const;
  void check_structure(const YAML::Node& node, const std::string& path, int depth,
                       long& budget) const;
  std::string file_;
  std::string text_;
  YAML::Node root_;
};

}  // namespace kdx
