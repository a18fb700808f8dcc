#include "common/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace kdx {
namespace {

constexpr std::uint64_t kMiB = 1024ull * 1024;
constexpr std::uint64_t kGiB = 1024ull * kMiB;

std::uint64_t default_cap(InputKind kind) {
  switch (kind) {
    case InputKind::Record:
    case InputKind::Spec:
      return 16 * kMiB;
    case InputKind::Data:
      return 4 * kGiB;
    case InputKind::Weights:
      return 256 * kGiB;
  }
  return 16 * kMiB;
}

const char* kind_name(InputKind kind) {
  switch (kind) {
    case InputKind::Record:
      return "run records";
    case InputKind::Spec:
      return "experiment files";
    case InputKind::Data:
      return "data files";
    case InputKind::Weights:
      return "weight files";
  }
  return "inputs";
}

const char* file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens without blocking (a FIFO with no writer would block open(2) itself), then checks
// the type of what was opened, not of what the path named a moment earlier.
std::uint64_t open_checked(const std::string& path, InputKind kind, Fd& out) {
  out.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (out.fd < 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(out.fd, &st) != 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw Error(path + ": not a regular file (" + file_type(st.st_mode) + ")");
  auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t cap = input_cap(kind);
  if (size > cap)
    throw Error(path + ": " + format_bytes(size) + " is more than the " + format_bytes(cap) +
                " limit for " + kind_name(kind) + " (set " + input_cap_variable(kind) +
                " to raise it)");
  return size;
}

}  // namespace

const char* input_cap_variable(InputKind kind) {
  switch (kind) {
    case InputKind::Record:
      return "KDX_MAX_RECORD_SIZE";
    case InputKind::Spec:
      return "KDX_MAX_SPEC_SIZE";
    case InputKind::Data:
      return "KDX_MAX_DATA_SIZE";
    case InputKind::Weights:
      return "KDX_MAX_WEIGHTS_SIZE";
  }
  return "";
}

long long parse_byte_size(const std::string& text) {
  if (text.empty()) return -1;
  std::string num = text;
  unsigned long long mult = 1;
  char last = text.back();
  if (last < '0' || last > '9') {
    num.pop_back();
    switch (last) {
      case 'k':
      case 'K':
        mult = 1024ull;
        break;
      case 'm':
      case 'M':
        mult = kMiB;
        break;
      case 'g':
      case 'G':
        mult = kGiB;
        break;
      case 't':
      case 'T':
        mult = 1024ull * kGiB;
        break;
      default:
        return -1;
    }
  }
  if (num.empty()) return -1;
  unsigned long long v = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return -1;
    if (__builtin_mul_overflow(v, 10ull, &v) ||
        __builtin_add_overflow(v, static_cast<unsigned long long>(c - '0'), &v))
      return -1;
  }
  if (__builtin_mul_overflow(v, mult, &v) || v > static_cast<unsigned long long>(INT64_MAX))
    return -1;
  return static_cast<long long>(v);
}

std::uint64_t input_cap(InputKind kind) {
  const char* var = input_cap_variable(kind);
  const char* env = std::getenv(var);
  if (!env || !*env) return default_cap(kind);
  long long v = parse_byte_size(env);
  if (v <= 0)
    throw Error(std::string(var) + "='" + env + "' is not a size (e.g. 8G, 500M, 1048576)");
  return static_cast<std::uint64_t>(v);
}

std::string format_bytes(std::uint64_t bytes) {
  char buf[64];
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  if (v == static_cast<double>(static_cast<std::uint64_t>(v)))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::uint64_t check_input(const std::string& path, InputKind kind) {
  Fd fd;
  return open_checked(path, kind, fd);
}

std::string read_input(const std::string& path, InputKind kind) {
  Fd fd;
  std::uint64_t size = open_checked(path, kind, fd);
  std::uint64_t cap = input_cap(kind);
  std::string out;
  out.reserve(static_cast<size_t>(size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > cap)
      throw Error(path + ": grew past the " + format_bytes(cap) + " limit for " + kind_name(kind) +
                  " while it was read (set " + input_cap_variable(kind) + " to raise it)");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::ifstream open_input(const std::string& path, InputKind kind) {
  check_input(path, kind);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  return in;
}

}  // namespace kdx
