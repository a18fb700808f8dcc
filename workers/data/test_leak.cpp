#include "workers/data/test_leak.h"

#include <unordered_map>

#include "common/strings.h"
#include "workers/data/readers.h"

namespace kdx::data {
namespace {

std::string key_of(const std::u32string& text) {
  size_t a = 0, b = text.size();
  auto space = [](char32_t c) { return c == U' ' || c == U'\n' || c == U'\r' || c == U'\t'; };
  while (a < b && space(text[a])) ++a;
  while (b > a && space(text[b - 1])) --b;
  return encode_utf8(text.substr(a, b - a));
}

}  // namespace

std::string Leak::message() const {
  return file + ": document '" + document + "' is also a test document of dataset " + dataset +
         "; learning from it, even without labels, leaks the test set";
}

std::optional<Leak> find_test_leak(const std::vector<std::string>& unlabelled_files,
                                   const std::vector<TestSplit>& tests) {
  if (unlabelled_files.empty() || tests.empty()) return std::nullopt;
  std::unordered_map<std::string, std::string> test_texts;  // text -> dataset
  for (auto& t : tests)
    for (auto& d : read_dataset(t.format, t.files))
      if (!d.text.empty()) test_texts.emplace(key_of(d.text), t.dataset);
  for (auto& f : unlabelled_files)
    for (auto& d : read_texts(f)) {
      auto it = test_texts.find(key_of(d.text));
      if (it != test_texts.end()) return Leak{f, d.id, it->second};
    }
  return std::nullopt;
}

}  // namespace kdx::data
