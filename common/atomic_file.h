// AtomicFile: a file that appears under its final name whole or not at all.
// Readers on other nodes of a network filesystem either see the old file or the new
// one, never half of it: the content goes to a temporary file beside the target,
// is fsync'ed, and is renamed over the target only on an explicit commit().
#pragma once

#include <string>
#include <vector>

namespace kdx {

class AtomicFile {
 public:
  // durable=false skips the fsyncs: the rename is still atomic for readers, and a caller
  // writing thousands of files makes them durable at once with sync_filesystem().
  explicit AtomicFile(std::string path, bool durable = true);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const std::string& data);
  // fsync the data, rename over the target, fsync the directory. Throws on failure.
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
  bool durable_ = true;
};

// Convenience: write the whole content atomically.
void write_file_atomic(const std::string& path, const std::string& content, bool durable = true);

// Removes, under `dir` (recursively), the temporary files of AtomicFiles whose writer was
// killed before it committed or cleaned up (a SIGKILL, a node lost): "<name>.tmp.<pid>.<n>"
// where no process <pid> lives on this host. Returns the paths removed. A writer that is
// still alive keeps its file; on another host a pid says nothing, so call it where the
// directory has one writer at a time (a run's rank 0).
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

// syncfs(2) on the filesystem holding `path`: one flush for many non-durable writes.
void sync_filesystem(const std::string& path);

// mkdir -p; throws kdx::Error naming the first directory that cannot be created.
void make_dirs(const std::string& dir);
bool file_exists(const std::string& path);

// Reading outside input (bounded, regular files only) is common/input_file.h.

}  // namespace kdx
