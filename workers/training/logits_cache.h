// The teacher-logits cache: the teacher runs once over the training examples, and
// students read its per-token logits from a memory-mapped file instead of running it
// every epoch. The header carries a key (hash of teacher weights, vocabulary, data files
// and encoding settings) and every example's token ids: a student whose own key or ids
// differ gets a "stale cache" error, never silently wrong targets.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kdx::training {

struct LogitsWriter {
  // width = logits per token; fp16 halves the file.
  LogitsWriter(std::string path, std::string key, int width, bool fp16);
  void add(const std::vector<int>& ids, const torch::Tensor& logits);  // logits [len, width]
  void commit();                                                       // atomic

  std::string path, key;
  int width;
  bool fp16;
  std::vector<std::vector<int>> ids;
  std::vector<torch::Tensor> rows;
};

class LogitsCache {
 public:
  // Throws kdx::Error when the file is missing, corrupt, or its key differs from `key`.
  LogitsCache(const std::string& path, const std::string& expected_key);
  ~LogitsCache();
  LogitsCache(const LogitsCache&) = delete;
  LogitsCache& operator=(const LogitsCache&) = delete;

  size_t size() const { return offsets_.size(); }
  int width() const { return width_; }
  // Logits of example i as float32 [len, width]; throws when `ids` differ from the cached ids.
  torch::Tensor get(size_t i, const std::vector<int>& ids) const;

 private:
  std::string path_;
  int width_ = 0;
  bool fp16_ = false;
  std::vector<int64_t> offsets_, lengths_;
  const char* map_ = nullptr;
  size_t map_size_ = 0, data_start_ = 0, ids_start_ = 0;
};

}  // namespace kdx::training
