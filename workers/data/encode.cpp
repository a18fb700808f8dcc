#include "workers/data/encode.h"

#include <algorithm>
#include <set>

#include "workers/data/word_table.h"

namespace kdx::data {

long EncodedDataset::total_tokens() const {
  long n = 0;
  for (auto& d : docs) n += static_cast<long>(d.tokens.size());
  return n;
}

EncodedDataset encode_dataset(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                              const TagScheme& scheme, int window) {
  EncodedDataset out;
  out.scheme = scheme;
  const int cols = scheme.columns();
  const auto& vocab = tokenizer.vocab();
  for (size_t di = 0; di < docs.size(); ++di) {
    auto& d = docs[di];
    EncodedDoc ed;
    ed.id = d.id;
    ed.tokens = tokenizer.tokenize(d.text);
    ed.tags = encode_tags(scheme, ed.tokens, d.entities);
    ed.words = token_words(d.text, ed.tokens);
    for (auto& w : make_windows(ed.tokens, d.text, vocab, window)) {
      Example ex;
      ex.doc = static_cast<int>(di);
      ex.window = w;
      ex.ids.reserve(static_cast<size_t>(w.count + 2));
      ex.ids.push_back(vocab.cls());
      ex.tags.assign(static_cast<size_t>(cols), kIgnoreTag);
      for (int i = w.first; i < w.first + w.count; ++i) {
        ex.ids.push_back(ed.tokens[static_cast<size_t>(i)].id);
        for (int c = 0; c < cols; ++c)
          ex.tags.push_back(ed.tags[static_cast<size_t>(i * cols + c)]);
      }
      ex.ids.push_back(vocab.sep());
      for (int c = 0; c < cols; ++c) ex.tags.push_back(kIgnoreTag);
      out.examples.push_back(std::move(ex));
    }
    out.docs.push_back(std::move(ed));
  }
  return out;
}

void append_unlabelled(EncodedDataset& data, const std::vector<Document>& docs,
                       const Tokenizer& tokenizer, int window) {
  std::vector<Document> texts;
  for (auto& d : docs) texts.push_back({d.id, d.text, {}});
  auto enc = encode_dataset(texts, tokenizer, data.scheme, window);
  int offset = static_cast<int>(data.docs.size());
  for (auto& ex : enc.examples) {
    ex.doc += offset;
    ex.labelled = false;
    std::fill(ex.tags.begin(), ex.tags.end(), kIgnoreTag);
    data.examples.push_back(std::move(ex));
  }
  for (auto& d : enc.docs) data.docs.push_back(std::move(d));
}

long labelled_cells(const Example& ex) {
  long n = 0;
  for (int t : ex.tags) n += t != kIgnoreTag;
  return n;
}

long distillation_cells(const Example& ex) {
  if (ex.labelled) return labelled_cells(ex);
  long cols = ex.ids.empty() ? 0 : static_cast<long>(ex.tags.size() / ex.ids.size());
  return std::max<long>(0, static_cast<long>(ex.ids.size()) - 2) * cols;  // not [CLS]/[SEP]
}

Batch make_batch(const EncodedDataset& data, const std::vector<int>& examples, int pad_id) {
  Batch b;
  b.size = static_cast<int>(examples.size());
  b.columns = data.scheme.columns();
  for (int e : examples)
    b.len = std::max(b.len, static_cast<int>(data.examples[static_cast<size_t>(e)].ids.size()));
  size_t cells = static_cast<size_t>(b.size) * static_cast<size_t>(b.len);
  b.ids.assign(cells, pad_id);
  b.mask.assign(cells, 0);
  b.tags.assign(cells * static_cast<size_t>(b.columns), kIgnoreTag);
  b.kd_mask.assign(cells * static_cast<size_t>(b.columns), 0);
  b.examples = examples;
  bool words = !examples.empty() && !data.examples[static_cast<size_t>(examples[0])].words.empty();
  if (words) b.words.assign(cells, 0);
  for (int r = 0; r < b.size; ++r) {
    auto& ex = data.examples[static_cast<size_t>(examples[static_cast<size_t>(r)])];
    size_t row = static_cast<size_t>(r) * static_cast<size_t>(b.len);
    for (size_t i = 0; i < ex.ids.size(); ++i) {
      b.ids[row + i] = ex.ids[i];
      b.mask[row + i] = 1;
    }
    if (words)
      std::copy(ex.words.begin(), ex.words.end(), b.words.begin() + static_cast<long>(row));
    const size_t cols = static_cast<size_t>(b.columns), first = row * cols;
    std::copy(ex.tags.begin(), ex.tags.end(), b.tags.begin() + static_cast<long>(first));
    for (size_t i = 0; i < ex.tags.size(); ++i) {
      size_t t = i / cols;
      bool interior = t > 0 && t + 1 < ex.ids.size();
      b.kd_mask[first + i] = ex.labelled ? ex.tags[i] != kIgnoreTag : interior;
    }
  }
  return b;
}

std::vector<Document> decode_predictions(const EncodedDataset& data,
                                         const std::vector<std::vector<int>>& example_tags) {
  const int cols = data.scheme.columns();
  std::vector<std::vector<int>> doc_tags(data.docs.size());
  for (size_t d = 0; d < data.docs.size(); ++d)
    doc_tags[d].assign(data.docs[d].tokens.size() * static_cast<size_t>(cols), 0);
  for (size_t e = 0; e < data.examples.size() && e < example_tags.size(); ++e) {
    auto& ex = data.examples[e];
    auto& tags = example_tags[e];
    for (int i = 0; i < ex.window.count; ++i)
      for (int c = 0; c < cols; ++c) {
        int t = tags[static_cast<size_t>((i + 1) * cols + c)];  // +1: skip [CLS]
        doc_tags[static_cast<size_t>(ex.doc)]
                [static_cast<size_t>((ex.window.first + i) * cols + c)] = t < 0 ? 0 : t;
      }
  }
  std::vector<Document> out;
  for (size_t d = 0; d < data.docs.size(); ++d) {
    Document doc;
    doc.id = data.docs[d].id;
    doc.entities = decode_tags(data.scheme, data.docs[d].tokens, doc_tags[d]);
    out.push_back(std::move(doc));
  }
  return out;
}

RoundTrip round_trip(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                     const TagScheme& scheme) {
  RoundTrip r;
  for (auto& d : docs) {
    auto tokens = tokenizer.tokenize(d.text);
    auto decoded = decode_tags(scheme, tokens, encode_tags(scheme, tokens, d.entities));
    std::set<Entity> got(decoded.begin(), decoded.end());
    for (auto& e : d.entities) {
      ++r.gold;
      if (got.count(e)) ++r.survived;
    }
  }
  return r;
}

std::vector<std::string> types_of(const std::vector<Document>& docs) {
  std::set<std::string> t;
  for (auto& d : docs)
    for (auto& e : d.entities) t.insert(e.type);
  return {t.begin(), t.end()};
}

}  // namespace kdx::data
