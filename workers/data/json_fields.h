// Typed fields of the JSON files the worker reads back (a teacher's model.json, types.json
// and run.json, a Hugging Face config.json, tokenizer_config.json, an export's
// encoding.json): a field of the wrong JSON type is a kdx::Error naming the file and the
// field, "<file>: arch: expected a string, got 5", never nlohmann's bare type_error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdx::data {

// A JSON value as a message shows it: its text, cut to about 40 characters.
std::string show_json(const nlohmann::json& value);

// Reads one JSON object of `file` (empty: messages start at the field); `prefix` ("bert")
// names where it sits in the file.
class JsonFields {
 public:
  // Throws "<file>: expected a JSON object, got ..." (or "<file>: <prefix>: ...").
  JsonFields(const nlohmann::json& object, std::string file, std::string prefix = "");

  bool has(const std::string& key) const;  // present and not null
  // Required: "<file>: <field>: missing (expected a string)" when absent or null.
  std::string string(const std::string& key) const;
  int integer(const std::string& key) const;
  // Optional: `fallback` when absent or null, an error when of another type.
  std::string string(const std::string& key, const std::string& fallback) const;
  int integer(const std::string& key, int fallback) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::vector<int> integers(const std::string& key, const std::vector<int>& fallback) const;
  // A nested object (required).
  JsonFields object(const std::string& key) const;

  // "bert.hidden_size" for key "hidden_size" under prefix "bert".
  std::string field(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  const std::string& file() const { return file_; }

 private:
  const nlohmann::json& get(const std::string& key, const char* expected) const;
  const nlohmann::json& object_;
  std::string file_, prefix_;
};

// A JSON list of strings (types.json): "<file>: [2]: expected a string, got 5".
std::vector<std::string> string_list(const nlohmann::json& value, const std::string& file);

}  // namespace kdx::data
