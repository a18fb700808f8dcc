// Read-only access to a .zip archive (libzip): list members, read one whole.
#pragma once

#include <memory>
#include <string>
#include <vector>

struct zip;

namespace kdx::data {

class ZipArchive {
 public:
  explicit ZipArchive(const std::string& path);  // throws kdx::Error naming the path
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  std::vector<std::string> names() const;
  std::string read(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  zip* z_ = nullptr;
};

}  // namespace kdx::data
