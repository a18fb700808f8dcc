#include "workers/decoding/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace kdx::decoding {

Decoder parse_decoder(const std::string& name) {
  if (name == "greedy") return Decoder::Greedy;
  if (name == "viterbi") return Decoder::Viterbi;
  throw Error("unknown decoding '" + name + "' (expected greedy or viterbi)");
}

std::string decoder_name(Decoder decoder) {
  return decoder == Decoder::Viterbi ? "viterbi" : "greedy";
}

namespace {

using data::WordPosition;

constexpr int kPositions = 4;

// Whether `cur` may follow `prev` on a piece at `pos` (see decode.h for the rules).
bool allowed(const data::TagScheme& s, int prev, int cur, WordPosition pos) {
  const bool word_starts = pos == WordPosition::Single || pos == WordPosition::First;
  const bool word_ends = pos == WordPosition::Single || pos == WordPosition::Last;
  if (s.bilou()) {
    const bool inside = prev == data::kB || prev == data::kI;
    if (!inside)
      return cur == data::kO || (word_starts && cur == data::kB) ||
             (pos == WordPosition::Single && cur == data::kU);
    return cur == data::kI || (word_ends && cur == data::kL);
  }
  if (s.per_type()) {
    const bool inside = prev != data::kO;
    if (word_starts) return cur == data::kO || cur == data::kB || (inside && cur == data::kI);
    return cur == (inside ? data::kI : data::kO);
  }
  // flat_bio: class 1 + 2t is B of type t, 2 + 2t its I.
  const int prev_type = prev == 0 ? -1 : (prev - 1) / 2;
  const int cur_type = cur == 0 ? -1 : (cur - 1) / 2;
  const bool cur_inside = cur != 0 && (cur - 1) % 2 == 1;
  if (word_starts) return !cur_inside || cur_type == prev_type;
  return prev_type < 0 ? cur == 0 : cur_inside && cur_type == prev_type;
}

int position_index(WordPosition p) {
  return static_cast<int>(p);
}

std::vector<int> greedy(const data::TagScheme& scheme, const float* logits, size_t tokens) {
  const size_t cols = static_cast<size_t>(scheme.columns());
  const size_t classes = static_cast<size_t>(scheme.classes());
  std::vector<int> tags(tokens * cols, 0);
  for (size_t cell = 0; cell < tokens * cols; ++cell) {
    const float* row = logits + cell * classes;
    // The first maximum, as torch's argmax on the CPU.
    tags[cell] = static_cast<int>(std::max_element(row, row + classes) - row);
  }
  return tags;
}

std::vector<int> viterbi(const data::TagScheme& scheme, const float* logits, size_t tokens,
                         const WordPosition* positions) {
  const int cols = scheme.columns(), classes = scheme.classes();
  const size_t k = static_cast<size_t>(classes);
  // Per position and state, the states allowed before it: built once, used for every token.
  std::vector<std::vector<int>> before[kPositions];
  for (int p = 0; p < kPositions; ++p) {
    before[p].resize(k);
    for (int cur = 0; cur < classes; ++cur)
      for (int prev = 0; prev < classes; ++prev)
        if (allowed(scheme, prev, cur, static_cast<WordPosition>(p)))
          before[p][static_cast<size_t>(cur)].push_back(prev);
  }
  constexpr double kNever = -std::numeric_limits<double>::infinity();
  std::vector<int> tags(tokens * static_cast<size_t>(cols), 0);
  std::vector<double> logp(k), score(k), next(k);
  std::vector<int> back(tokens * k, 0);
  for (int col = 0; col < cols; ++col) {
    // The sequence starts after a virtual O.
    std::fill(score.begin(), score.end(), kNever);
    score[0] = 0;
    for (size_t t = 0; t < tokens; ++t) {
      const float* row = logits + (t * static_cast<size_t>(cols) + static_cast<size_t>(col)) * k;
      const double top = *std::max_element(row, row + k);
      double sum = 0;
      for (size_t c = 0; c < k; ++c) sum += std::exp(static_cast<double>(row[c]) - top);
      const double log_z = top + std::log(sum);
      for (size_t c = 0; c < k; ++c) logp[c] = static_cast<double>(row[c]) - log_z;
      const auto& allowed_before = before[position_index(positions[t])];
      for (size_t cur = 0; cur < k; ++cur) {
        double best = kNever;
        int arg = allowed_before[cur].empty() ? 0 : allowed_before[cur].front();
        for (int prev : allowed_before[cur])
          if (score[static_cast<size_t>(prev)] > best) {
            best = score[static_cast<size_t>(prev)];
            arg = prev;
          }
        next[cur] = best == kNever ? kNever : best + logp[cur];
        back[t * k + cur] = arg;
      }
      std::swap(score, next);
    }
    if (tokens == 0) continue;
    // No end constraint: an entity open at the last token is closed by decode_tags().
    int state = static_cast<int>(std::max_element(score.begin(), score.end()) - score.begin());
    for (size_t t = tokens; t-- > 0;) {
      tags[t * static_cast<size_t>(cols) + static_cast<size_t>(col)] = state;
      state = back[t * k + static_cast<size_t>(state)];
    }
  }
  return tags;
}

}  // namespace

std::vector<int> decode(const data::TagScheme& scheme, Decoder decoder, const float* logits,
                        size_t tokens, const data::WordPosition* positions) {
  if (decoder == Decoder::Greedy) return greedy(scheme, logits, tokens);
  return viterbi(scheme, logits, tokens, positions);
}

std::vector<int> decode(const data::TagScheme& scheme, Decoder decoder,
                        const std::vector<float>& logits,
                        const std::vector<data::WordPosition>& positions) {
  const size_t cell = static_cast<size_t>(scheme.columns()) * static_cast<size_t>(scheme.classes());
  if (cell == 0 || logits.size() % cell != 0 || logits.size() / cell != positions.size())
    throw Error("decode: " + std::to_string(logits.size()) + " logits for " +
                std::to_string(positions.size()) + " tokens of " +
                std::to_string(scheme.columns()) + " columns x " +
                std::to_string(scheme.classes()) + " classes");
  return decode(scheme, decoder, logits.data(), positions.size(), positions.data());
}

void add_window_logits(const data::EncodedDataset& data, size_t example,
                       const float* example_logits, std::vector<std::vector<float>>& doc_logits) {
  const auto& ex = data.examples.at(example);
  const size_t doc = static_cast<size_t>(ex.doc);
  const size_t cell =
      static_cast<size_t>(data.scheme.columns()) * static_cast<size_t>(data.scheme.classes());
  if (doc_logits.size() < data.docs.size()) doc_logits.resize(data.docs.size());
  auto& rows = doc_logits[doc];
  if (rows.empty()) rows.assign(data.docs.at(doc).tokens.size() * cell, 0.0f);
  // Row 0 is [CLS]; the window's document tokens follow it.
  std::copy(example_logits + cell, example_logits + cell * static_cast<size_t>(ex.window.count + 1),
            rows.begin() + static_cast<long>(static_cast<size_t>(ex.window.first) * cell));
}

std::vector<data::Document> decode_documents(const data::EncodedDataset& data, Decoder decoder,
                                             const std::vector<std::vector<float>>& doc_logits) {
  std::vector<data::Document> out;
  out.reserve(data.docs.size());
  for (size_t d = 0; d < data.docs.size(); ++d) {
    data::Document doc;
    doc.id = data.docs[d].id;
    const auto& tokens = data.docs[d].tokens;
    if (d < doc_logits.size() && !doc_logits[d].empty()) {
      auto tags = decode(data.scheme, decoder, doc_logits[d], data::word_positions(tokens));
      doc.entities = data::decode_tags(data.scheme, tokens, tags);
    }
    out.push_back(std::move(doc));
  }
  return out;
}

}  // namespace kdx::decoding
