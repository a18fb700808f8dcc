#include "workers/training/artefact_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "common/error.h"
#include "common/input_file.h"

namespace kdx::training {
namespace {

std::atomic<uint64_t> g_written{0};

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

uint64_t fault_limit() {
  const char* v = std::getenv(kFaultWriteLimitVariable);
  if (!v || !*v) return UINT64_MAX;
  long long n = parse_byte_size(v);
  if (n < 0)
    throw Error(std::string(kFaultWriteLimitVariable) + "='" + v +
                "' is not a size (a test-only setting: bytes after which writes fail)");
  return static_cast<uint64_t>(n);
}

}  // namespace

uint64_t artefact_bytes_written() {
  return g_written.load();
}

ArtefactFile::ArtefactFile(std::string path) : path_(std::move(path)) {
  fault_limit_ = fault_limit();
  std::random_device rd;
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd() % 100000);
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
}

ArtefactFile::~ArtefactFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void ArtefactFile::write(const void* data, size_t size) {
  if (fd_ < 0) throw Error("cannot write " + path_ + ": the file is already closed");
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    size_t chunk = left;
    if (fault_limit_ != UINT64_MAX) {
      uint64_t done = g_written.load();
      if (done >= fault_limit_) {
        errno = ENOSPC;
        throw Error("cannot write " + path_ + ": " + std::strerror(errno));
      }
      chunk = static_cast<size_t>(std::min<uint64_t>(chunk, fault_limit_ - done));
    }
    ssize_t n = ::write(fd_, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path_ + ": " + std::strerror(errno));
    }
    g_written += static_cast<uint64_t>(n);
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void ArtefactFile::commit() {
  if (fd_ < 0) throw Error("cannot write " + path_ + ": the file is already closed");
  // A full disk may only show at fsync or close (delayed allocation, network filesystems).
  if (::fsync(fd_) != 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    throw Error("cannot rename " + tmp_path_ + " to " + path_ + ": " + std::strerror(errno));
  committed_ = true;
  int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_artefact(const std::string& path, const std::string& content) {
  ArtefactFile f(path);
  f.write(content);
  f.commit();
}

void write_artefact_streamed(
    const std::string& path,
    const std::function<void(const std::function<size_t(const void*, size_t)>&)>& produce) {
  ArtefactFile f(path);
  std::string error;
  std::function<size_t(const void*, size_t)> sink = [&](const void* data, size_t size) {
    if (error.empty()) {
      try {
        f.write(data, size);
      } catch (const Error& e) {
        error = e.what();
      }
    }
    return size;
  };
  produce(sink);
  if (!error.empty()) throw Error(error);
  f.commit();
}

}  // namespace kdx::training
