// Entities <-> per-token tags. Three encodings:
//  - per_type_bio: one O/B/I decision per entity type per token, so entities of different
//    types may overlap or nest (RuNNE nests up to 6 levels); same-type nesting keeps the outer.
//    Classes: O=0, B=1, I=2.
//  - per_type_bilou: the same columns with O/B/I/L/U (the paper's encoding): a one-token entity
//    is U, a longer one B I.. L. Classes: O=0, B=1, I=2, L=3, U=4, so B and I keep their
//    per_type_bio ids.
//  - flat_bio: one label per token (O, B-T, I-T), outermost entities only. Classes: O=0,
//    B-T=1+2t, I-T=2+2t for the t-th type.
// Tags are a [tokens x columns] matrix of class ids: columns = types (per_type_*) or 1.
#pragma once

#include <string>
#include <vector>

#include "workers/data/document.h"
#include "workers/data/tokenizer.h"

namespace kdx::data {

// Class ids of the per-type schemes (per_type_bio uses the first three).
enum TagClass : int { kO = 0, kB = 1, kI = 2, kL = 3, kU = 4 };

struct TagScheme {
  std::string name;  // per_type_bio | per_type_bilou | flat_bio
  std::vector<std::string> types;

  bool per_type() const { return name == "per_type_bio" || name == "per_type_bilou"; }
  bool bilou() const { return name == "per_type_bilou"; }
  int columns() const { return per_type() ? static_cast<int>(types.size()) : 1; }
  int classes() const {
    return per_type() ? (bilou() ? 5 : 3) : 1 + 2 * static_cast<int>(types.size());
  }
  int type_index(const std::string& type) const;
};

// The scheme names make_scheme accepts, in the order error messages list them.
const std::vector<std::string>& scheme_names();
// Throws kdx::Error for an unknown scheme name.
TagScheme make_scheme(const std::string& name, std::vector<std::string> types);

// Row-major [tokens.size() x columns] class ids.
std::vector<int> encode_tags(const TagScheme& scheme, const std::vector<Token>& tokens,
                             const std::vector<Entity>& entities);
// Character spans back from tags (lenient: an I or L without a B opens an entity, and an
// entity still open at a B, an O, a U or the end is closed there).
std::vector<Entity> decode_tags(const TagScheme& scheme, const std::vector<Token>& tokens,
                                const std::vector<int>& tags);

}  // namespace kdx::data
