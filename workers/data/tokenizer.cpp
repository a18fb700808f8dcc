#include "workers/data/tokenizer.h"

#include <sys/stat.h>
#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "workers/data/document.h"
#include "workers/data/json_fields.h"

namespace kdx::data {
namespace {

utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

// Hugging Face's cleaning maps Zs to spaces, and its final str.split() also splits on the
// line and paragraph separators (Zl U+2028, Zp U+2029).
bool is_whitespace(char32_t c) {
  if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') return true;
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

bool is_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  auto cat = category(c);
  // Python's unicodedata.category(c).startswith("C"): Cc, Cf, Cs, Co, Cn.
  return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CN;
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Lower-case and/or strip accents one code point at a time (NFD, then drop Mn), as
// BertTokenizer does per word; every output code point remembers its source position.
void normalise(char32_t c, int pos, bool lower, bool strip, std::u32string& out,
               std::vector<int>& origin) {
  if (lower) c = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  if (!strip) {
    out.push_back(c);
    origin.push_back(pos);
    return;
  }
  utf8proc_int32_t buf[8];
  int last_boundclass = 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 8,
                                               UTF8PROC_DECOMPOSE, &last_boundclass);
  if (n < 0 || n > 8) {
    out.push_back(c);
    origin.push_back(pos);
    return;
  }
  for (utf8proc_ssize_t i = 0; i < n; ++i) {
    if (category(static_cast<char32_t>(buf[i])) == UTF8PROC_CATEGORY_MN) continue;
    out.push_back(static_cast<char32_t>(buf[i]));
    origin.push_back(pos);
  }
}

}  // namespace

std::vector<Word> basic_tokenize(const std::u32string& text, const TokenizerOptions& opt) {
  bool strip = opt.strip_accents == 1 || (opt.strip_accents == -1 && opt.lowercase);
  std::vector<Word> words;
  // Pass 1: clean, split on whitespace and around CJK characters.
  struct Raw {
    int start, end;
  };
  std::vector<Raw> raw;
  int start = -1;
  auto close = [&](int end) {
    if (start >= 0) raw.push_back({start, end});
    start = -1;
  };
  for (int i = 0; i < static_cast<int>(text.size()); ++i) {
    char32_t c = text[static_cast<size_t>(i)];
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;  // dropped, does not split
    if (is_whitespace(c)) {
      close(i);
      continue;
    }
    if (opt.tokenize_chinese_chars && is_cjk(c)) {
      close(i);
      raw.push_back({i, i + 1});
      continue;
    }
    if (start < 0) start = i;
  }
  close(static_cast<int>(text.size()));
  // Pass 2: normalise each word, then split off punctuation characters.
  for (auto& r : raw) {
    std::u32string norm;
    std::vector<int> origin;
    for (int i = r.start; i < r.end; ++i) {
      char32_t c = text[static_cast<size_t>(i)];
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      normalise(c, i, opt.lowercase, strip, norm, origin);
    }
    Word cur;
    bool open = false;
    auto flush = [&] {
      if (open && !cur.text.empty()) words.push_back(cur);
      cur = Word{};
      open = false;
    };
    for (size_t k = 0; k < norm.size(); ++k) {
      char32_t c = norm[k];
      if (is_punctuation(c)) {
        flush();
        words.push_back({std::u32string(1, c), origin[k], origin[k] + 1, {origin[k]}});
        continue;
      }
      if (!open) {
        cur.start = origin[k];
        open = true;
      }
      cur.text.push_back(c);
      cur.origin.push_back(origin[k]);
      cur.end = origin[k] + 1;
    }
    flush();
  }
  return words;
}

Tokenizer::Tokenizer(Vocab vocab, TokenizerOptions options)
    : vocab_(std::move(vocab)), options_(options) {
  for (const char* t : {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"})
    if (vocab_.id(t) >= 0) specials_.emplace_back(decode_utf8(t, "special token"), vocab_.id(t));
}

void Tokenizer::wordpiece(const Word& w, int word, std::vector<Token>& out) const {
  int unk = vocab_.unk();
  if (static_cast<int>(w.text.size()) > options_.max_chars_per_word) {
    out.push_back({unk, w.start, w.end, word});
    return;
  }
  // Each piece spans the original characters its normalised characters came from (stripped
  // accents or a changed case must not make every piece claim the whole word).
  std::vector<Token> pieces;
  size_t start = 0;
  while (start < w.text.size()) {
    size_t end = w.text.size();
    int found = -1;
    while (start < end) {
      std::string sub = encode_utf8(w.text.substr(start, end - start));
      if (start > 0) sub = "##" + sub;
      int id = vocab_.id(sub);
      if (id >= 0) {
        found = id;
        break;
      }
      --end;
    }
    if (found < 0) {
      out.push_back({unk, w.start, w.end, word});
      return;
    }
    int s = w.origin.empty() ? w.start : w.origin[start];
    int e = w.origin.empty() ? w.end : w.origin[end - 1] + 1;
    pieces.push_back({found, s, e, word});
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

void Tokenizer::tokenize_span(const std::u32string& text, int begin, int end, int& word,
                              std::vector<Token>& out) const {
  if (begin >= end) return;
  for (auto w : basic_tokenize(
           text.substr(static_cast<size_t>(begin), static_cast<size_t>(end - begin)), options_)) {
    w.start += begin;
    w.end += begin;
    for (auto& o : w.origin) o += begin;
    wordpiece(w, word++, out);
  }
}

std::vector<Token> Tokenizer::tokenize(const std::u32string& text) const {
  std::vector<Token> out;
  int from = 0, word = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != U'[') continue;
    for (auto& [t, id] : specials_) {
      if (text.compare(i, t.size(), t) != 0) continue;
      tokenize_span(text, from, static_cast<int>(i), word, out);
      out.push_back({id, static_cast<int>(i), static_cast<int>(i + t.size()), word++});
      from = static_cast<int>(i + t.size());
      i += t.size() - 1;
      break;
    }
  }
  tokenize_span(text, from, static_cast<int>(text.size()), word, out);
  return out;
}

std::vector<std::string> Tokenizer::pieces(const std::u32string& text) const {
  std::vector<std::string> out;
  for (auto& t : tokenize(text)) out.push_back(vocab_.tokens[static_cast<size_t>(t.id)]);
  return out;
}

std::vector<WordPosition> word_positions(const std::vector<Token>& tokens) {
  const size_t n = tokens.size();
  std::vector<WordPosition> out(n, WordPosition::Single);
  auto same = [&](size_t a, size_t b) {
    return tokens[a].word >= 0 && tokens[a].word == tokens[b].word;
  };
  for (size_t i = 0; i < n; ++i) {
    bool joins_prev = i > 0 && same(i - 1, i), joins_next = i + 1 < n && same(i, i + 1);
    out[i] = joins_prev ? (joins_next ? WordPosition::Middle : WordPosition::Last)
                        : (joins_next ? WordPosition::First : WordPosition::Single);
  }
  return out;
}

TokenizerOptions tokenizer_options_from_dir(const std::string& dir) {
  TokenizerOptions o;
  for (auto name : {"/tokenizer_config.json", "/config.json"}) {
    struct stat st;
    std::string path = dir + name;
    if (::stat(path.c_str(), &st) != 0) continue;
    // A file that does not parse is an error, not the defaults: a tokenizer that silently
    // stopped lowercasing would encode every text differently from its teacher.
    auto j = read_json_file(path);
    JsonFields f(j, path);
    if (f.has("do_lower_case")) {
      o.lowercase = f.boolean("do_lower_case", o.lowercase);
      // null (Hugging Face's "follow do_lower_case") and absent: -1.
      if (f.has("strip_accents")) o.strip_accents = f.boolean("strip_accents", false) ? 1 : 0;
      o.tokenize_chinese_chars = f.boolean("tokenize_chinese_chars", o.tokenize_chinese_chars);
      return o;
    }
  }
  return o;
}

}  // namespace kdx::data
