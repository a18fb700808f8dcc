// From a tagger's logits to tags: the tagger scores every (token, column, class) cell
// independently, so nothing in its output stops an entity from starting or ending inside a
// word, or an I from following an O. Greedy decoding takes that output as it is (argmax per
// cell); Viterbi decoding finds, per column, the most probable tag sequence that is valid for
// the scheme and begins and ends entities only on word boundaries (the paper's decoding).
// Torch-free: plain float rows, so the sanitizer build compiles it too.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "workers/data/encode.h"
#include "workers/data/tagging.h"
#include "workers/data/tokenizer.h"

namespace kdx::decoding {

enum class Decoder { Greedy, Viterbi };

// "greedy" | "viterbi"; throws kdx::Error naming the choices for anything else.
Decoder parse_decoder(const std::string& name);
std::string decoder_name(Decoder decoder);

// `logits`: row-major [tokens x columns x classes] of `scheme`; `positions`: one per token.
// Returns [tokens x columns] class ids, as encode_tags() does. Viterbi works on per-cell
// log-softmax probabilities and starts from O; it closes an entity still open at the last
// token (decode_tags() does that leniently). Its constraints, by the piece's place in its word:
//  - per_type_bilou: single-piece word: from O/L/U to O, B or U, from B/I to I or L; first
//    piece: O/L/U to O or B, B/I to I; middle piece: O to O, B/I to I; last piece: O to O,
//    B/I to I or L.
//  - per_type_bio: a word's first (or only) piece: O, B, or I after B/I; a later piece keeps
//    the word's state: O after O, I after B/I.
//  - flat_bio: as per_type_bio, with I-T only after B-T/I-T of the same type.
std::vector<int> decode(const data::TagScheme& scheme, Decoder decoder, const float* logits,
                        size_t tokens, const data::WordPosition* positions);
// Checked sizes (kdx::Error when logits or positions do not fit the tokens).
std::vector<int> decode(const data::TagScheme& scheme, Decoder decoder,
                        const std::vector<float>& logits,
                        const std::vector<data::WordPosition>& positions);

// Windows overlap nothing and cover every token, so a document's logits are its windows'
// rows side by side; decoding them as one sequence lets entities run across a window cut and
// gives every token its place in its word. `doc_logits` (indexed like data.docs) is sized
// on a document's first window.
void add_window_logits(const data::EncodedDataset& data, size_t example,
                       const float* example_logits,  // [ids.size() x columns x classes]
                       std::vector<std::vector<float>>& doc_logits);
// Documents with their decoded entities (ids as in data); a document without logits
// (none of its windows added) has no entities.
std::vector<data::Document> decode_documents(const data::EncodedDataset& data, Decoder decoder,
                                             const std::vector<std::vector<float>>& doc_logits);

}  // namespace kdx::decoding
