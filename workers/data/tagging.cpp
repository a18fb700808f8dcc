#include "workers/data/tagging.h"

#include <algorithm>

#include "common/error.h"

namespace kdx::data {

int TagScheme::type_index(const std::string& type) const {
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == type) return static_cast<int>(i);
  return -1;
}

const std::vector<std::string>& scheme_names() {
  static const std::vector<std::string> names = {"per_type_bio", "per_type_bilou", "flat_bio"};
  return names;
}

TagScheme make_scheme(const std::string& name, std::vector<std::string> types) {
  const auto& names = scheme_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw Error("unknown tagging scheme '" + name +
                "' (expected per_type_bio, per_type_bilou or flat_bio)");
  return {name, std::move(types)};
}

namespace {

// Token index range [first, last] covered by an entity, or first > last when none.
std::pair<int, int> token_range(const std::vector<Token>& tokens, const Entity& e) {
  // Tokens are in text order: the first that ends after the entity starts, then a scan.
  auto it = std::lower_bound(tokens.begin(), tokens.end(), e.start,
                             [](const Token& t, int start) { return t.end <= start; });
  int first = -1, last = -2;
  for (int i = static_cast<int>(it - tokens.begin()); i < static_cast<int>(tokens.size()); ++i) {
    auto& t = tokens[static_cast<size_t>(i)];
    if (t.start >= e.end) break;
    if (t.end > e.start) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return {first, last};
}

}  // namespace

std::vector<int> encode_tags(const TagScheme& scheme, const std::vector<Token>& tokens,
                             const std::vector<Entity>& entities) {
  int cols = scheme.columns();
  std::vector<int> tags(tokens.size() * static_cast<size_t>(cols), 0);
  // Longest first, so the outer entity wins wherever two cannot both be encoded.
  std::vector<Entity> sorted = entities;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entity& a, const Entity& b) {
    return (a.end - a.start) > (b.end - b.start);
  });
  for (auto& e : sorted) {
    int type = scheme.type_index(e.type);
    if (type < 0) continue;
    auto [first, last] = token_range(tokens, e);
    if (first > last) continue;
    int col = scheme.per_type() ? type : 0;
    bool free = true;
    for (int i = first; i <= last; ++i)
      free = free && tags[static_cast<size_t>(i * cols + col)] == 0;
    if (!free) continue;
    if (scheme.bilou()) {
      for (int i = first; i <= last; ++i)
        tags[static_cast<size_t>(i * cols + col)] =
            first == last ? kU : (i == first ? kB : (i == last ? kL : kI));
      continue;
    }
    int b = scheme.per_type() ? kB : 1 + 2 * type;
    for (int i = first; i <= last; ++i)
      tags[static_cast<size_t>(i * cols + col)] = i == first ? b : b + 1;
  }
  return tags;
}

std::vector<Entity> decode_tags(const TagScheme& scheme, const std::vector<Token>& tokens,
                                const std::vector<int>& tags) {
  std::vector<Entity> out;
  int cols = scheme.columns();
  for (int col = 0; col < cols; ++col) {
    int open_type = -1;
    Entity cur;
    auto close = [&] {
      if (open_type >= 0) out.push_back(cur);
      open_type = -1;
    };
    for (int i = 0; i < static_cast<int>(tokens.size()); ++i) {
      int tag = tags[static_cast<size_t>(i * cols + col)];
      if (tag == 0) {
        close();
        continue;
      }
      int type = scheme.per_type() ? col : (tag - 1) / 2;
      // U and B start a new entity; I and L continue the open one (or open one, leniently).
      bool begin =
          scheme.per_type() ? tag == kB || (scheme.bilou() && tag == kU) : (tag - 1) % 2 == 0;
      auto& t = tokens[static_cast<size_t>(i)];
      if (begin || open_type != type) {
        close();
        cur = {t.start, t.end, scheme.types[static_cast<size_t>(type)]};
        open_type = type;
      } else {
        cur.end = t.end;
      }
      if (scheme.bilou() && (tag == kL || tag == kU)) close();
    }
    close();
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kdx::data
