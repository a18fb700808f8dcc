#include "workers/data/word_vectors.h"

#include <utf8proc.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <map>

#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/data/document.h"

namespace kdx::data {
namespace {

// navec's vocabulary for 250K words inflates to 4 MB; a "vocab.bin" that inflates past this
// is not one (a gzip bomb would otherwise fill memory).
constexpr size_t kMaxInflated = 256u << 20;
constexpr int kMaxDim = 4096;

// The members of a POSIX (ustar / GNU) tar, by name, as [offset, size) into the bytes.
std::map<std::string, std::pair<size_t, size_t>> tar_members(const std::string& tar,
                                                             const std::string& where) {
  std::map<std::string, std::pair<size_t, size_t>> out;
  size_t at = 0;
  while (at + 512 <= tar.size()) {
    const unsigned char* h = reinterpret_cast<const unsigned char*>(tar.data() + at);
    bool zero = true;
    for (int i = 0; i < 512 && zero; ++i) zero = h[i] == 0;
    if (zero) break;  // the end-of-archive blocks
    // The checksum: the header's bytes summed with the checksum field read as spaces.
    unsigned long sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    unsigned long stored = 0;
    for (int i = 148; i < 156 && h[i] >= '0' && h[i] <= '7'; ++i)
      stored = stored * 8 + (h[i] - '0');
    if (stored != sum)
      throw Error(where + ": not a tar archive (header checksum mismatch at byte " +
                  std::to_string(at) + ")");
    std::string name(reinterpret_cast<const char*>(h),
                     strnlen(reinterpret_cast<const char*>(h), 100));
    if (h[124] & 0x80) throw Error(where + ": " + name + ": member larger than 8 GB");
    size_t size = 0;
    for (int i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; ++i) size = size * 8 + (h[i] - '0');
    size_t data = at + 512;
    if (size > tar.size() - data)
      throw Error(where + ": " + name + ": claims " + std::to_string(size) +
                  " bytes, the archive has " + std::to_string(tar.size() - data) + " left");
    char type = static_cast<char>(h[156]);
    if (type == '0' || type == '\0') out[name] = {data, size};
    at = data + (size + 511) / 512 * 512;
  }
  return out;
}

std::string gunzip(const std::string& in, const std::string& where) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw Error(where + ": cannot start gzip");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      throw Error(where + ": not valid gzip data");
    }
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > kMaxInflated) {
      inflateEnd(&z);
      throw Error(where + ": inflates to more than " + format_bytes(kMaxInflated));
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      throw Error(where + ": gzip data ends early");
    }
  }
  inflateEnd(&z);
  return out;
}

uint32_t u32(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);  // navec writes numpy's little-endian uint32
  return v;
}

std::string lower(const std::string& word) {
  std::u32string w = decode_utf8(word, "word");
  for (auto& c : w) c = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  return encode_utf8(w);
}

void index_words(WordVectors& v, const std::string& where) {
  v.rows.reserve(v.words.size());
  v.lowercase = true;
  for (uint32_t i = 0; i < v.words.size(); ++i) {
    // A word given twice would make one of its vectors unreachable: the file is not what it
    // claims to be (navec's own vocabulary has no duplicates).
    if (!v.rows.emplace(v.words[i], i).second)
      throw Error(where + ": the word '" + v.words[i] + "' appears twice (rows " +
                  std::to_string(v.rows[v.words[i]]) + " and " + std::to_string(i) + ")");
    if (v.lowercase && lower(v.words[i]) != v.words[i]) v.lowercase = false;
  }
}

}  // namespace

void WordVectors::vector(uint32_t row, float* out) const {
  if (row >= words.size()) throw Error("word vector row " + std::to_string(row) + " out of range");
  if (!dense.empty()) {
    std::memcpy(out, dense.data() + static_cast<size_t>(row) * dim, sizeof(float) * dim);
    return;
  }
  const int sub = dim / qdim;
  for (int q = 0; q < qdim; ++q) {
    const float* c =
        codes.data() +
        (static_cast<size_t>(q) * centroids + indexes[static_cast<size_t>(row) * qdim + q]) * sub;
    std::memcpy(out + q * sub, c, sizeof(float) * sub);
  }
}

std::vector<std::string> spellings(const std::string& word) {
  std::vector<std::string> out = {word};
  std::string w = lower(word);
  if (w != word) out.push_back(w);
  // ё -> е (U+0451 -> U+0435, UTF-8 D1 91 -> D0 B5).
  std::string e;
  for (size_t i = 0; i < w.size(); ++i) {
    if (i + 1 < w.size() && static_cast<unsigned char>(w[i]) == 0xD1 &&
        static_cast<unsigned char>(w[i + 1]) == 0x91) {
      e += "\xD0\xB5";
      ++i;
    } else {
      e += w[i];
    }
  }
  if (e != w) out.push_back(e);
  return out;
}

std::optional<uint32_t> WordVectors::find(const std::string& word) const {
  for (auto& s : spellings(word))
    if (auto it = rows.find(s); it != rows.end()) return it->second;
  return std::nullopt;
}

WordVectors parse_navec(const std::string& tar, const std::string& where) {
  auto members = tar_members(tar, where);
  for (auto name : {"meta.json", "vocab.bin", "pq.bin"})
    if (!members.count(name))
      throw Error(where + ": not a navec archive (no " + std::string(name) + ")");
  auto member = [&](const char* name) {
    auto [at, size] = members[name];
    return tar.substr(at, size);
  };
  WordVectors v;
  v.format = "navec";
  std::string err;
  auto meta = parse_json(member("meta.json"), &err);
  if (meta.is_discarded()) throw Error(where + ": meta.json: " + err);
  if (!meta.is_object() || !meta.contains("protocol") || meta["protocol"] != 1)
    throw Error(where + ": meta.json: protocol: expected 1 (navec's format), got " +
                (meta.is_object() && meta.contains("protocol") ? meta["protocol"].dump() : "none"));
  if (meta.contains("id") && meta["id"].is_string()) v.id = meta["id"].get<std::string>();

  std::string pq = member("pq.bin");
  if (pq.size() < 16) throw Error(where + ": pq.bin: shorter than its 16-byte header");
  uint64_t n = u32(pq, 0), dim = u32(pq, 4), qdim = u32(pq, 8), centroids = u32(pq, 12);
  if (dim == 0 || dim > kMaxDim || qdim == 0 || dim % qdim != 0 || centroids == 0 ||
      centroids > 256)
    throw Error(where + ": pq.bin: header (vectors " + std::to_string(n) + ", dim " +
                std::to_string(dim) + ", qdim " + std::to_string(qdim) + ", centroids " +
                std::to_string(centroids) + ") is not a product quantization kdx can read");
  uint64_t want = 16 + n * qdim + qdim * centroids * (dim / qdim) * 4;
  if (pq.size() != want)
    throw Error(where + ": pq.bin: " + std::to_string(pq.size()) + " bytes, its header says " +
                std::to_string(want));
  v.dim = static_cast<int>(dim);
  v.qdim = static_cast<int>(qdim);
  v.centroids = static_cast<int>(centroids);
  v.indexes.assign(pq.begin() + 16, pq.begin() + 16 + static_cast<long>(n * qdim));
  for (size_t i = 0; i < v.indexes.size(); ++i)
    if (v.indexes[i] >= centroids)
      throw Error(where + ": pq.bin: vector " + std::to_string(i / qdim) + " names centroid " +
                  std::to_string(v.indexes[i]) + " of " + std::to_string(centroids));
  v.codes.resize(qdim * centroids * (dim / qdim));
  std::memcpy(v.codes.data(), pq.data() + 16 + n * qdim, v.codes.size() * 4);
  for (float c : v.codes)
    if (!std::isfinite(c)) throw Error(where + ": pq.bin: a codebook value is not finite");

  std::string vocab = gunzip(member("vocab.bin"), where + ": vocab.bin");
  if (vocab.size() < 4) throw Error(where + ": vocab.bin: shorter than its 4-byte header");
  uint64_t words = u32(vocab, 0);
  if (words != n)
    throw Error(where + ": vocab.bin: " + std::to_string(words) + " words, pq.bin " +
                std::to_string(n) + " vectors");
  if (vocab.size() < 4 + 4 * words) throw Error(where + ": vocab.bin: ends inside its word counts");
  std::string text = vocab.substr(4 + 4 * words);
  if (size_t bad = find_invalid_utf8(text); bad != std::string::npos)
    throw Error(where + ": vocab.bin: not valid UTF-8 at byte " + std::to_string(bad));
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == '\n') {
      v.words.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  if (v.words.size() != n)
    throw Error(where + ": vocab.bin: " + std::to_string(v.words.size()) +
                " words in its text, its header says " + std::to_string(n));
  index_words(v, where + ": vocab.bin");
  return v;
}

WordVectors parse_text_vectors(const std::string& text, const std::string& where) {
  WordVectors v;
  v.format = "text";
  v.id = where.substr(where.rfind('/') + 1);
  if (size_t bad = find_invalid_utf8(text); bad != std::string::npos)
    throw Error(where + ": not valid UTF-8 at byte " + std::to_string(bad));
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    size_t a = 0;
    while (a < line.size()) {
      size_t b = line.find(' ', a);
      if (b == std::string::npos) b = line.size();
      if (b > a) f.push_back(line.substr(a, b - a));
      a = b + 1;
    }
    auto at = [&](const std::string& m) {
      return where + ":" + std::to_string(line_no) + ": " + m;
    };
    // word2vec's and fastText's header: "<words> <dim>".
    if (line_no == 1 && f.size() == 2 &&
        f[0].find_first_not_of("0123456789") == std::string::npos &&
        f[1].find_first_not_of("0123456789") == std::string::npos) {
      long d = std::strtol(f[1].c_str(), nullptr, 10);
      if (d <= 0 || d > kMaxDim)
        throw Error(at("dimension " + f[1] + " (1 to " + std::to_string(kMaxDim) + ")"));
      v.dim = static_cast<int>(d);
      continue;
    }
    if (f.size() < 2) throw Error(at("expected a word and its vector"));
    int d = static_cast<int>(f.size()) - 1;
    if (v.dim == 0) {
      if (d > kMaxDim)
        throw Error(
            at("dimension " + std::to_string(d) + " (at most " + std::to_string(kMaxDim) + ")"));
      v.dim = d;
    }
    if (d != v.dim)
      throw Error(at(std::to_string(d) + " values, expected " + std::to_string(v.dim)));
    for (int i = 1; i <= d; ++i) {
      char* e = nullptr;
      float x = std::strtof(f[static_cast<size_t>(i)].c_str(), &e);
      if (!e || *e != '\0' || !std::isfinite(x))
        throw Error(at("value " + std::to_string(i) + " '" +
                       f[static_cast<size_t>(i)].substr(0, 40) + "' is not a finite number"));
      v.dense.push_back(x);
    }
    v.words.push_back(f[0]);
  }
  if (v.words.empty()) throw Error(where + ": no vectors");
  index_words(v, where);
  return v;
}

WordVectors read_navec(const std::string& path) {
  return parse_navec(read_input(path, InputKind::Weights), path);
}

WordVectors read_text_vectors(const std::string& path) {
  return parse_text_vectors(read_input(path, InputKind::Data), path);
}

WordVectors read_word_vectors(const std::string& path, const std::string& format) {
  if (format == "navec") return read_navec(path);
  if (format == "text") return read_text_vectors(path);
  throw Error("vectors.format: '" + format + "' is not navec or text");
}

}  // namespace kdx::data
