#include "workers/data/json_fields.h"

#include <climits>

#include "common/error.h"

namespace kdx::data {

std::string show_json(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

JsonFields::JsonFields(const nlohmann::json& object, std::string file, std::string prefix)
    : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {
  if (!object_.is_object())
    throw Error((file_.empty() ? "" : file_ + ": ") + (prefix_.empty() ? "" : prefix_ + ": ") +
                "expected a JSON object, got " + show_json(object_));
}

std::string JsonFields::field(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "." + key;
}

void JsonFields::fail(const std::string& key, const std::string& message) const {
  throw Error((file_.empty() ? "" : file_ + ": ") + field(key) + ": " + message);
}

bool JsonFields::has(const std::string& key) const {
  return object_.contains(key) && !object_[key].is_null();
}

const nlohmann::json& JsonFields::get(const std::string& key, const char* expected) const {
  if (!has(key)) fail(key, std::string("missing (expected ") + expected + ")");
  return object_[key];
}

std::string JsonFields::string(const std::string& key) const {
  auto& v = get(key, "a string");
  if (!v.is_string()) fail(key, "expected a string, got " + show_json(v));
  return v.get<std::string>();
}

int JsonFields::integer(const std::string& key) const {
  auto& v = get(key, "an integer");
  if (!v.is_number_integer()) fail(key, "expected an integer, got " + show_json(v));
  if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(INT_MAX)
                             : (v.get<int64_t>() < INT_MIN || v.get<int64_t>() > INT_MAX))
    fail(key, show_json(v) + " does not fit a 32-bit integer");
  return static_cast<int>(v.get<int64_t>());
}

std::string JsonFields::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

int JsonFields::integer(const std::string& key, int fallback) const {
  return has(key) ? integer(key) : fallback;
}

double JsonFields::number(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  auto& v = object_[key];
  if (!v.is_number()) fail(key, "expected a number, got " + show_json(v));
  return v.get<double>();
}

bool JsonFields::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  auto& v = object_[key];
  if (!v.is_boolean()) fail(key, "expected true or false, got " + show_json(v));
  return v.get<bool>();
}

std::vector<int> JsonFields::integers(const std::string& key,
                                      const std::vector<int>& fallback) const {
  if (!has(key)) return fallback;
  auto& v = object_[key];
  if (!v.is_array()) fail(key, "expected a list of integers, got " + show_json(v));
  std::vector<int> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer() || v[i].get<int64_t>() < INT_MIN || v[i].get<int64_t>() > INT_MAX)
      fail(key + "[" + std::to_string(i) + "]", "expected an integer, got " + show_json(v[i]));
    out.push_back(static_cast<int>(v[i].get<int64_t>()));
  }
  return out;
}

JsonFields JsonFields::object(const std::string& key) const {
  auto& v = get(key, "an object");
  if (!v.is_object()) fail(key, "expected an object, got " + show_json(v));
  return JsonFields(v, file_, field(key));
}

std::vector<std::string> string_list(const nlohmann::json& value, const std::string& file) {
  if (!value.is_array())
    throw Error(file + ": expected a list of strings, got " + show_json(value));
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string())
      throw Error(file + ": [" + std::to_string(i) + "]: expected a string, got " +
                  show_json(value[i]));
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

}  // namespace kdx::data
