// Small navec archives made in memory, byte for byte as navec writes them (a tar of
// meta.json, vocab.bin = gzip(uint32 n, n uint32 counts, words joined by '\n'), pq.bin =
// uint32 vectors, dim, qdim, centroids, then vectors x qdim uint8 indexes, then qdim x
// centroids x dim/qdim float32 codes), for the reader's tests and the worker's.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace kdx::test {

// Codebook q, centroid c, component k: a value the tests can recompute.
inline float navec_code(int q, int c, int k) {
  return 0.01f * (100 * q + 10 * c + k) - 0.5f;
}

inline std::string gzip_bytes(const std::string& in) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline void tar_add(std::string& tar, const std::string& name, const std::string& data) {
  char h[512] = {};
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011lo", static_cast<unsigned long>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 0);
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 5);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(h[i]);
  std::snprintf(h + 148, 8, "%06o", sum);
  tar.append(h, 512);
  tar += data;
  tar.append((512 - data.size() % 512) % 512, '\0');
}

template <typename T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// `rows[i]` are word i's centroid indexes (one per codebook); centroids = 4. `skip` names a
// member to leave out.
inline std::string navec_archive(const std::vector<std::string>& words, int dim, int qdim,
                                 const std::vector<std::vector<int>>& rows,
                                 const std::string& skip = "") {
  const int centroids = 4, sub = dim / qdim;
  std::string vocab;
  put<uint32_t>(vocab, static_cast<uint32_t>(words.size()));
  for (size_t i = 0; i < words.size(); ++i) put<uint32_t>(vocab, 1);
  for (size_t i = 0; i < words.size(); ++i) vocab += (i ? "\n" : "") + words[i];
  std::string pq;
  for (uint32_t x : {static_cast<uint32_t>(rows.size()), static_cast<uint32_t>(dim),
                     static_cast<uint32_t>(qdim), static_cast<uint32_t>(centroids)})
    put(pq, x);
  for (auto& r : rows)
    for (int c : r) pq += static_cast<char>(c);
  for (int q = 0; q < qdim; ++q)
    for (int c = 0; c < centroids; ++c)
      for (int k = 0; k < sub; ++k) put(pq, navec_code(q, c, k));
  std::string tar;
  if (skip != "meta") tar_add(tar, "meta.json", "{\n  \"id\": \"test\",\n  \"protocol\": 1\n}");
  if (skip != "vocab") tar_add(tar, "vocab.bin", gzip_bytes(vocab));
  if (skip != "pq") tar_add(tar, "pq.bin", pq);
  tar.append(1024, '\0');
  return tar;
}

}  // namespace kdx::test
