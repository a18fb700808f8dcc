// Tag decoders (workers/decoding): greedy against Viterbi within word boundaries, BILOU,
// word indices from the tokenizer, and the boundary property over all of RuNNE's test set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/data/encode.h"
#include "workers/data/readers.h"
#include "workers/data/vocab_builder.h"
#include "workers/decoding/decode.h"

namespace kdx::decoding {
namespace {

using data::Entity;
using data::TagScheme;
using data::Token;
using data::WordPosition;
constexpr int O = data::kO, B = data::kB, I = data::kI, L = data::kL, U = data::kU;

// Tokens of one character each at 0, 2, 4, ...; `words[i]` is token i's word index.
std::vector<Token> tokens_of(const std::vector<int>& words) {
  std::vector<Token> t;
  for (size_t i = 0; i < words.size(); ++i) {
    int s = 2 * static_cast<int>(i);
    t.push_back({5, s, s + 1, words[i]});
  }
  return t;
}

// Logits from per-cell probabilities ([tokens][columns][classes]): their logs.
std::vector<float> logits_of(const std::vector<std::vector<std::vector<double>>>& p) {
  std::vector<float> out;
  for (auto& tok : p)
    for (auto& cell : tok)
      for (double x : cell) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

std::vector<Entity> run(const TagScheme& s, Decoder d, const std::vector<Token>& toks,
                        const std::vector<float>& logits, std::vector<int>* tags = nullptr) {
  auto t = decode(s, d, logits, data::word_positions(toks));
  if (tags) *tags = t;
  return data::decode_tags(s, toks, t);
}

TEST(Decoding, TokenizerNumbersWordsAndPositionsFollowThem) {
  data::Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "x", ","})
    v.add(s);
  data::Tokenizer tok(v, {});
  // un ##aff ##able | x | , | [UNK] (zz) | [SEP] | x
  auto toks = tok.tokenize(data::decode_utf8("unaffable x, zz[SEP]x", "t"));
  ASSERT_EQ(toks.size(), 8u);
  std::vector<int> words;
  for (auto& t : toks) words.push_back(t.word);
  EXPECT_EQ(words, (std::vector<int>{0, 0, 0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(
      data::word_positions(toks),
      (std::vector<WordPosition>{WordPosition::First, WordPosition::Middle, WordPosition::Last,
                                 WordPosition::Single, WordPosition::Single, WordPosition::Single,
                                 WordPosition::Single, WordPosition::Single}));
  // Hand-made tokens (word -1) are words of their own, even next to each other.
  std::vector<Token> plain = {{5, 0, 1}, {5, 1, 2}};
  EXPECT_EQ(data::word_positions(plain),
            (std::vector<WordPosition>{WordPosition::Single, WordPosition::Single}));
}

TEST(Decoding, BilouEncodesUForOneTokenAndBILForLonger) {
  auto s = data::make_scheme("per_type_bilou", {"PER"});
  EXPECT_EQ(s.columns(), 1);
  EXPECT_EQ(s.classes(), 5);
  auto toks = tokens_of({0, 1, 2, 3, 4, 5, 6});
  std::vector<Entity> gold = {{0, 1, "PER"}, {2, 7, "PER"}, {8, 11, "PER"}, {12, 13, "PER"}};
  auto tags = data::encode_tags(s, toks, gold);
  EXPECT_EQ(tags, (std::vector<int>{U, B, I, L, B, L, U}));
  EXPECT_EQ(data::decode_tags(s, toks, tags), gold);
  // Lenient: I or L without a B opens an entity, an unclosed one ends at the last token.
  EXPECT_EQ(data::decode_tags(s, tokens_of({0, 1, 2}), {L, I, I}),
            (std::vector<Entity>{{0, 1, "PER"}, {2, 5, "PER"}}));
}

TEST(Decoding, SchemeNamesAndDecoderNames) {
  try {
    data::make_scheme("bilou", {"A"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "unknown tagging scheme 'bilou' (expected per_type_bio, per_type_bilou or "
                 "flat_bio)");
  }
  EXPECT_EQ(parse_decoder("greedy"), Decoder::Greedy);
  EXPECT_EQ(parse_decoder("viterbi"), Decoder::Viterbi);
  EXPECT_EQ(decoder_name(Decoder::Viterbi), "viterbi");
  try {
    parse_decoder("beam");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unknown decoding 'beam' (expected greedy or viterbi)");
  }
  auto s = data::make_scheme("per_type_bilou", {"A"});
  EXPECT_THROW(decode(s, Decoder::Viterbi, std::vector<float>(9, 0.0f),
                      std::vector<WordPosition>(2, WordPosition::Single)),
               Error);
}

TEST(Decoding, BilouEntityOverASplitWordEndsOnTheWordBoundary) {
  auto s = data::make_scheme("per_type_bilou", {"PER"});
  // "Ким Чен ." with "Чен" split in two pieces: the model favours a U on the first piece.
  auto toks = tokens_of({0, 1, 1, 2});
  auto logits = logits_of({{{0.9, 0.04, 0.02, 0.02, 0.02}},
                           {{0.1, 0.3, 0.0, 0.0, 0.6}},
                           {{0.5, 0.0, 0.05, 0.45, 0.0}},
                           {{0.9, 0.04, 0.02, 0.02, 0.02}}});
  // Zero probabilities are -inf logits: the decoders must cope with those too.
  std::vector<int> tags;
  EXPECT_EQ(run(s, Decoder::Greedy, toks, logits, &tags), (std::vector<Entity>{{2, 3, "PER"}}));
  EXPECT_EQ(tags, (std::vector<int>{O, U, O, O}));
  EXPECT_EQ(run(s, Decoder::Viterbi, toks, logits, &tags), (std::vector<Entity>{{2, 5, "PER"}}));
  EXPECT_EQ(tags, (std::vector<int>{O, B, L, O}));
}

TEST(Decoding, BioAndFlatKeepAWordsStateInsideIt) {
  // per_type_bio, one word of three pieces: greedy ends the entity after the middle piece.
  auto bio = data::make_scheme("per_type_bio", {"ORG"});
  auto toks = tokens_of({0, 0, 0, 1});
  auto logits = logits_of(
      {{{0.4, 0.6, 1e-3}}, {{0.4, 1e-3, 0.6}}, {{0.55, 1e-3, 0.45}}, {{0.9, 0.05, 0.05}}});
  std::vector<int> tags;
  EXPECT_EQ(run(bio, Decoder::Greedy, toks, logits), (std::vector<Entity>{{0, 3, "ORG"}}));
  EXPECT_EQ(run(bio, Decoder::Viterbi, toks, logits, &tags), (std::vector<Entity>{{0, 5, "ORG"}}));
  EXPECT_EQ(tags, (std::vector<int>{B, I, I, O}));
  // A B on a later piece of a word (a new entity mid-word) is not allowed either.
  auto mid_b =
      logits_of({{{0.2, 0.7, 0.1}}, {{0.1, 0.8, 0.1}}, {{0.1, 0.2, 0.7}}, {{0.8, 0.1, 0.1}}});
  run(bio, Decoder::Viterbi, toks, mid_b, &tags);
  EXPECT_EQ(tags, (std::vector<int>{B, I, I, O}));
  run(bio, Decoder::Greedy, toks, mid_b, &tags);
  EXPECT_EQ(tags, (std::vector<int>{B, B, I, O}));

  // flat_bio (O, B-A, I-A, B-B, I-B): inside a word the type stays; I-B only after B-B/I-B.
  auto flat = data::make_scheme("flat_bio", {"A", "B"});
  auto ftoks = tokens_of({0, 1, 1, 2});
  auto flogits = logits_of({{{0.1, 0.8, 0.05, 0.03, 0.02}},
                            {{0.1, 0.05, 0.5, 0.01, 0.34}},
                            {{0.1, 0.0, 0.35, 0.0, 0.55}},
                            {{0.9, 0.03, 0.03, 0.02, 0.02}}});
  // Greedy switches to I-B on the word's last piece (a B entity opened mid-word).
  EXPECT_EQ(run(flat, Decoder::Greedy, ftoks, flogits, &tags),
            (std::vector<Entity>{{0, 3, "A"}, {4, 5, "B"}}));
  EXPECT_EQ(tags, (std::vector<int>{1, 2, 4, 0}));
  // Viterbi keeps the word's type: I-A after I-A on its last piece.
  EXPECT_EQ(run(flat, Decoder::Viterbi, ftoks, flogits, &tags), (std::vector<Entity>{{0, 5, "A"}}));
  EXPECT_EQ(tags, (std::vector<int>{1, 2, 2, 0}));
}

TEST(Decoding, NestedTypesDecodeIndependentlyPerColumn) {
  auto s = data::make_scheme("per_type_bilou", {"COUNTRY", "ORGANIZATION"});
  auto toks = tokens_of({0, 1, 2});  // "Полиция Малайзии ."
  // COUNTRY: U on the second word; ORGANIZATION: B L over both words.
  auto logits = logits_of({{{0.9, 0.05, 0.02, 0.02, 0.01}, {0.1, 0.7, 0.1, 0.05, 0.05}},
                           {{0.1, 0.05, 0.05, 0.1, 0.7}, {0.1, 0.05, 0.25, 0.6, 0.0}},
                           {{0.9, 0.05, 0.02, 0.02, 0.01}, {0.9, 0.05, 0.02, 0.02, 0.01}}});
  std::vector<int> tags;
  EXPECT_EQ(run(s, Decoder::Viterbi, toks, logits, &tags),
            (std::vector<Entity>{{0, 3, "ORGANIZATION"}, {2, 3, "COUNTRY"}}));
  EXPECT_EQ(tags, (std::vector<int>{O, B, U, L, O, O}));
}

TEST(Decoding, ViterbiStartsFromOAndClosesAnEntityOpenAtTheEnd) {
  auto s = data::make_scheme("per_type_bilou", {"X"});
  auto toks = tokens_of({0, 1});
  // An I first (no B before it) and no L at the end.
  auto logits = logits_of({{{0.2, 0.3, 0.5, 0.0, 0.0}}, {{0.2, 0.0, 0.6, 0.2, 0.0}}});
  std::vector<int> tags;
  EXPECT_EQ(run(s, Decoder::Greedy, toks, logits, &tags), (std::vector<Entity>{{0, 3, "X"}}));
  EXPECT_EQ(tags, (std::vector<int>{I, I}));
  EXPECT_EQ(run(s, Decoder::Viterbi, toks, logits, &tags), (std::vector<Entity>{{0, 3, "X"}}));
  EXPECT_EQ(tags, (std::vector<int>{B, I}));
  // per_type_bio: an I at the start becomes the best valid alternative (B here).
  auto bio = data::make_scheme("per_type_bio", {"X"});
  run(bio, Decoder::Viterbi, tokens_of({0}), logits_of({{{0.2, 0.3, 0.5}}}), &tags);
  EXPECT_EQ(tags, (std::vector<int>{B}));
  run(bio, Decoder::Greedy, tokens_of({0}), logits_of({{{0.2, 0.3, 0.5}}}), &tags);
  EXPECT_EQ(tags, (std::vector<int>{I}));
}

TEST(Decoding, DocumentsStitchWindowsSoEntitiesCrossACut) {
  data::Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "##x"}) v.add(s);
  data::Tokenizer tok(v, {});
  // "b c d" crosses the window cut; "ax" is one word of two pieces, the document's last, open.
  data::Document d{"7", data::decode_utf8("a b c d ax", "t"), {{2, 7, "X"}, {8, 10, "X"}}};
  for (auto name : {"per_type_bio", "per_type_bilou"}) {
    auto data = data::encode_dataset({d}, tok, data::make_scheme(name, {"X"}), 4);
    ASSERT_EQ(data.examples.size(), 3u);
    const int classes = data.scheme.classes();
    // An oracle that is sure of the gold tags except at the very end, where it says I
    // (an entity left open at the end of the last window).
    std::vector<std::vector<float>> doc_logits;
    for (size_t e = 0; e < data.examples.size(); ++e) {
      auto& ex = data.examples[e];
      std::vector<float> rows(ex.ids.size() * static_cast<size_t>(classes), 0.0f);
      for (size_t t = 0; t < ex.ids.size(); ++t) {
        int gold = ex.tags[t];
        if (gold < 0) continue;
        if (e + 1 == data.examples.size() && t + 2 == ex.ids.size()) gold = I;
        rows[t * static_cast<size_t>(classes) + static_cast<size_t>(gold)] = 5.0f;
      }
      add_window_logits(data, e, rows.data(), doc_logits);
    }
    auto docs = decode_documents(data, Decoder::Viterbi, doc_logits);
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].id, "7");
    EXPECT_EQ(docs[0].entities, d.entities) << name;
  }
}

// Independent statement of a valid sequence: the scheme's grammar from a leading O, plus
// where entities may begin and end inside words.
bool valid(const TagScheme& s, const std::vector<int>& tags, const std::vector<WordPosition>& pos) {
  int prev = O;
  for (size_t t = 0; t < tags.size(); ++t) {
    int c = tags[t];
    bool starts = pos[t] == WordPosition::Single || pos[t] == WordPosition::First;
    bool ends = pos[t] == WordPosition::Single || pos[t] == WordPosition::Last;
    bool open = prev == B || prev == I;
    if (!s.per_type()) {  // flat_bio: 1 + 2t = B-t, 2 + 2t = I-t
      int prev_type = prev == 0 ? -1 : (prev - 1) / 2, type = c == 0 ? -1 : (c - 1) / 2;
      bool inside = c != 0 && (c - 1) % 2 == 1;
      if (inside && type != prev_type) return false;
      if (!starts && (type != prev_type || (c != 0 && !inside))) return false;
    } else if (s.bilou()) {
      if (open != (c == I || c == L)) return false;
      if ((c == B || c == U) && !starts) return false;
      if ((c == L || c == U) && !ends) return false;
    } else {
      if (c == I && !open) return false;
      if (!starts && (c == B || (c == O) != (prev == O))) return false;
    }
    prev = c;
  }
  return true;
}

TEST(Decoding, ViterbiFindsTheBestValidSequence) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> noise(0.0f, 2.0f);
  for (auto name : {"per_type_bio", "per_type_bilou", "flat_bio"}) {
    auto s =
        data::make_scheme(name, name == std::string("flat_bio") ? std::vector<std::string>{"X", "Y"}
                                                                : std::vector<std::string>{"X"});
    const int k = s.classes();
    for (int trial = 0; trial < 200; ++trial) {
      const int n = 1 + static_cast<int>(rng() % 5);
      std::vector<int> words;
      for (int t = 0, w = 0; t < n; ++t) words.push_back(t > 0 && rng() % 2 ? w : ++w);
      auto toks = tokens_of(words);
      auto pos = data::word_positions(toks);
      std::vector<float> logits(static_cast<size_t>(n * k));
      for (auto& x : logits) x = noise(rng);
      auto score = [&](const std::vector<int>& tags) {
        double sc = 0;
        for (int t = 0; t < n; ++t) {
          double z = 0;
          for (int c = 0; c < k; ++c) z += std::exp(logits[static_cast<size_t>(t * k + c)]);
          sc += logits[static_cast<size_t>(t * k + tags[static_cast<size_t>(t)])] - std::log(z);
        }
        return sc;
      };
      double best = -1e300;
      std::vector<int> seq(static_cast<size_t>(n), 0);
      for (long code = 0; code < std::lround(std::pow(k, n)); ++code) {
        long c = code;
        for (int t = 0; t < n; ++t, c /= k) seq[static_cast<size_t>(t)] = static_cast<int>(c % k);
        if (valid(s, seq, pos)) best = std::max(best, score(seq));
      }
      auto got = decode(s, Decoder::Viterbi, logits, pos);
      ASSERT_TRUE(valid(s, got, pos)) << name << " trial " << trial;
      EXPECT_NEAR(score(got), best, 1e-4) << name << " trial " << trial;
    }
  }
}

// All of RuNNE's test set, random logits for every token: Viterbi's entities start and end
// where basic-tokenizer words do; greedy's do not (so the check can fail).
TEST(Decoding, ViterbiEntitiesOnWordBoundariesOverRunneTest) {
  std::string root = test::shared_data_dir();
  ASSERT_FALSE(root.empty()) << "the real data sets are missing: set KDX_DATA_DIR or run kdx data "
                                "fetch";
  auto train = data::read_dataset("runne", {root + "/runne/train.jsonl"});
  auto docs = data::read_dataset(
      "runne", {root + "/runne/test.jsonl", root + "/runne/test_with_answers.jsonl"});
  ASSERT_EQ(docs.size(), 93u);
  data::Tokenizer tok(data::build_vocab(train, 8000, {}), {});
  auto types = data::types_of(train);
  std::vector<std::set<int>> starts(docs.size()), ends(docs.size());
  for (size_t d = 0; d < docs.size(); ++d)
    for (auto& w : data::basic_tokenize(docs[d].text, tok.options())) {
      starts[d].insert(w.start);
      ends[d].insert(w.end);
    }
  for (auto name : {"per_type_bilou", "per_type_bio"}) {
    auto scheme = data::make_scheme(name, types);
    auto data = data::encode_dataset(docs, tok, scheme, 128);
    const size_t cell = static_cast<size_t>(scheme.columns() * scheme.classes());
    std::mt19937_64 rng(1);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::vector<std::vector<float>> doc_logits;
    std::vector<std::vector<int>> argmax_tags;  // today's greedy path, for comparison
    for (size_t e = 0; e < data.examples.size(); ++e) {
      auto& ex = data.examples[e];
      std::vector<float> rows(ex.ids.size() * cell);
      for (auto& x : rows) x = noise(rng);
      add_window_logits(data, e, rows.data(), doc_logits);
      std::vector<int> tags;
      for (size_t c = 0; c < ex.ids.size() * static_cast<size_t>(scheme.columns()); ++c) {
        const float* r = rows.data() + c * static_cast<size_t>(scheme.classes());
        tags.push_back(static_cast<int>(std::max_element(r, r + scheme.classes()) - r));
      }
      argmax_tags.push_back(tags);
    }
    auto off_boundary = [&](const std::vector<data::Document>& pred, long& entities) {
      long bad = 0;
      entities = 0;
      for (size_t d = 0; d < pred.size(); ++d)
        for (auto& en : pred[d].entities) {
          ++entities;
          bad += !starts[d].count(en.start) || !ends[d].count(en.end);
        }
      return bad;
    };
    long viterbi_entities = 0, greedy_entities = 0;
    auto viterbi = decode_documents(data, Decoder::Viterbi, doc_logits);
    EXPECT_EQ(off_boundary(viterbi, viterbi_entities), 0) << name;
    EXPECT_GT(viterbi_entities, 10000) << name;
    auto greedy = decode_documents(data, Decoder::Greedy, doc_logits);
    EXPECT_GT(off_boundary(greedy, greedy_entities), 1000) << name;
    // Greedy over stitched documents is exactly today's per-window argmax path.
    auto today = data::decode_predictions(data, argmax_tags);
    ASSERT_EQ(today.size(), greedy.size());
    for (size_t d = 0; d < today.size(); ++d)
      EXPECT_EQ(today[d].entities, greedy[d].entities) << name << " " << today[d].id;
  }
  // BILOU marks the same spans as BIO: as many gold entities survive encode -> decode.
  auto bio = data::round_trip(docs, tok, data::make_scheme("per_type_bio", types));
  auto bilou = data::round_trip(docs, tok, data::make_scheme("per_type_bilou", types));
  EXPECT_EQ(bio.gold, 5843);
  EXPECT_EQ(bilou.gold, 5843);
  EXPECT_EQ(bilou.survived, bio.survived);
  EXPECT_GT(bilou.fraction(), 0.9);
}

}  // namespace
}  // namespace kdx::decoding
