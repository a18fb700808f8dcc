#include "workers/training/logits_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_io.h"
#include "workers/training/artefact_file.h"
#include "workers/training/logits_header.h"

namespace kdx::training {
namespace {
const char kMagic[8] = {'K', 'D', 'X', 'L', 'O', 'G', '0', '1'};
}

LogitsWriter::LogitsWriter(std::string p, std::string k, int w, bool half)
    : path(std::move(p)), key(std::move(k)), width(w), fp16(half) {}

void LogitsWriter::add(const std::vector<int>& token_ids, const torch::Tensor& logits) {
  ids.push_back(token_ids);
  rows.push_back(
      logits.detach().to(torch::kCPU).to(fp16 ? torch::kHalf : torch::kFloat32).contiguous());
}

void LogitsWriter::commit() {
  // Layout: magic, u64 header length, JSON header, int32 ids of all rows, then logits rows.
  std::vector<int64_t> offsets, lengths;
  int64_t total = 0;
  for (auto& i : ids) {
    offsets.push_back(total);
    lengths.push_back(static_cast<int64_t>(i.size()));
    total += static_cast<int64_t>(i.size());
  }
  nlohmann::json header = {
      {"key", key},         {"width", width},     {"dtype", fp16 ? "fp16" : "fp32"},
      {"offsets", offsets}, {"lengths", lengths}, {"rows", total}};
  std::string h = header.dump();
  while ((16 + h.size()) % 8) h += ' ';
  // The worker's artefact writer: a full disk leaves the previous cache whole and names this
  // one ("cannot write <path>: No space left on device").
  ArtefactFile f(path);
  std::string head(kMagic, 8);
  uint64_t n = h.size();
  head.append(reinterpret_cast<const char*>(&n), 8);
  f.write(head + h);
  std::string buf;
  for (auto& i : ids) buf.append(reinterpret_cast<const char*>(i.data()), i.size() * 4);
  f.write(buf);
  for (auto& r : rows) f.write(r.data_ptr(), static_cast<size_t>(r.nbytes()));
  f.commit();
}

LogitsCache::LogitsCache(const std::string& path, const std::string& expected_key) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": teacher logits cache not found (did the logits stage run?)");
  struct stat st;
  ::fstat(fd, &st);
  map_size_ = static_cast<size_t>(st.st_size);
  void* m = map_size_ ? ::mmap(nullptr, map_size_, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (m == MAP_FAILED) throw Error(path + ": not a kdx logits cache (empty or unreadable)");
  map_ = static_cast<const char*>(m);
  LogitsHeader h;
  try {
    h = parse_logits_header(map_, map_size_, path);
  } catch (...) {
    ::munmap(const_cast<char*>(map_), map_size_);  // a throwing constructor runs no destructor
    map_ = nullptr;
    throw;
  }
  if (h.key != expected_key) {
    ::munmap(const_cast<char*>(map_), map_size_);
    map_ = nullptr;
    throw Error(path + ": stale teacher logits cache: it was made for key " + h.key.substr(0, 16) +
                "..., this run expects " + expected_key.substr(0, 16) +
                "... (teacher, vocabulary, data or encoding changed); re-run the logits stage");
  }
  width_ = h.width;
  fp16_ = h.fp16;
  offsets_ = std::move(h.offsets);
  lengths_ = std::move(h.lengths);
  ids_start_ = h.ids_start;
  data_start_ = h.data_start;
}

LogitsCache::~LogitsCache() {
  if (map_) ::munmap(const_cast<char*>(map_), map_size_);
}

torch::Tensor LogitsCache::get(size_t i, const std::vector<int>& ids) const {
  if (i >= offsets_.size())
    throw Error(path_ + ": stale teacher logits cache: no example " + std::to_string(i));
  int64_t off = offsets_[i], len = lengths_[i];
  const int32_t* cached = reinterpret_cast<const int32_t*>(map_ + ids_start_) + off;
  if (static_cast<int64_t>(ids.size()) != len ||
      std::memcmp(cached, ids.data(), static_cast<size_t>(len) * 4) != 0)
    throw Error(path_ + ": stale teacher logits cache: example " + std::to_string(i) +
                " has other token ids than this run's");
  size_t elem = fp16_ ? 2 : 4;
  const char* p =
      map_ + data_start_ + static_cast<size_t>(off) * static_cast<size_t>(width_) * elem;
  auto t =
      torch::from_blob(const_cast<char*>(p), {len, width_}, fp16_ ? torch::kHalf : torch::kFloat32);
  return fp16_ ? t.to(torch::kFloat32) : t.clone();  // a copy: the mapping stays read-only
}

}  // namespace kdx::training
