// ArtefactFile: the one way the worker writes its large artefacts (checkpoint files, model
// and best weights, the teacher-logits cache). The bytes go to a temporary file beside the
// target, which is fsync'ed and renamed over the target only on commit(): a write that fails
// (a full disk, a quota) leaves the previous file whole and removes the temporary one, and
// the error names the file that was being written: "cannot write <path>: <strerror>".
// Torch-free (kdx_worker_io).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kdx::training {

class ArtefactFile {
 public:
  explicit ArtefactFile(std::string path);
  ~ArtefactFile();  // removes the temporary file unless commit() succeeded; never throws
  ArtefactFile(const ArtefactFile&) = delete;
  ArtefactFile& operator=(const ArtefactFile&) = delete;

  // Throws kdx::Error "cannot write <path>: <reason>".
  void write(const void* data, size_t size);
  void write(const std::string& data) { write(data.data(), data.size()); }
  // fsync, close, rename over the target, fsync the directory. Throws kdx::Error naming the
  // target on failure (the temporary file is then removed by the destructor).
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t fault_limit_ = UINT64_MAX;  // KDX_FAULT_WRITE_LIMIT_BYTES, see below
};

// The whole content, atomically, through ArtefactFile.
void write_artefact(const std::string& path, const std::string& content);

// Writes through `produce`, which is handed a sink taking (data, size). The sink never
// throws and always reports every byte as taken: producers such as torch::save's
// PyTorchStreamWriter must not see a failed write (its destructor would then throw from a
// noexcept context and end the process with std::terminate). The first failure is kept and
// thrown as kdx::Error once `produce` returns; nothing reaches `path` unless it all did.
void write_artefact_streamed(
    const std::string& path,
    const std::function<void(const std::function<size_t(const void*, size_t)>&)>& produce);

// Test-only fault injection. KDX_FAULT_WRITE_LIMIT_BYTES=N (read when an ArtefactFile is
// created): once this process has written N bytes through ArtefactFile in total, every
// further write fails with ENOSPC, as on a full disk. For tests of the disk-full path on
// machines where a small filesystem cannot be mounted; never set it in production.
constexpr const char* kFaultWriteLimitVariable = "KDX_FAULT_WRITE_LIMIT_BYTES";
// Bytes this process has written through ArtefactFile so far (what the limit counts).
uint64_t artefact_bytes_written();

}  // namespace kdx::training
