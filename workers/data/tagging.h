// Entities <-> per-token tags. Two encodings:
//  - per_type_bio: one O/B/I decision per entity type per token, so entities of different
//    types may overlap or nest (RuNNE nests up to 6 levels); same-type nesting keeps the outer.
//  - flat_bio: one label per token (O, B-T, I-T), outermost entities only.
// Tags are a [tokens x columns] matrix of class ids: columns = types (per_type_bio) or 1.
#pragma once

#include <string>
#include <vector>

#include "workers/data/document.h"
#include "workers/data/tokenizer.h"

namespace kdx::data {

struct TagScheme {
  std::string name;  // per_type_bio | flat_bio
  std::vector<std::string> types;

  int columns() const { return name == "per_type_bio" ? static_cast<int>(types.size()) : 1; }
  int classes() const {
    return name == "per_type_bio" ? 3 : 1 + 2 * static_cast<int>(types.size());
  }
  int type_index(const std::string& type) const;
};

// Throws kdx::Error for an unknown scheme name.
TagScheme make_scheme(const std::string& name, std::vector<std::string> types);

// Row-major [tokens.size() x columns] class ids.
std::vector<int> encode_tags(const TagScheme& scheme, const std::vector<Token>& tokens,
                             const std::vector<Entity>& entities);
// Character spans back from tags (lenient: an I without a B opens an entity).
std::vector<Entity> decode_tags(const TagScheme& scheme, const std::vector<Token>& tokens,
                                const std::vector<int>& tags);

}  // namespace kdx::data
