#include "workers/data/zip_archive.h"

#include <zip.h>

#include "common/error.h"

namespace kdx::data {

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  int err = 0;
  z_ = zip_open(path.c_str(), ZIP_RDONLY, &err);
  if (!z_) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    std::string msg = zip_error_strerror(&e);
    zip_error_fini(&e);
    throw Error(path + ": cannot open zip archive: " + msg);
  }
}

ZipArchive::~ZipArchive() {
  if (z_) zip_discard(z_);
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  zip_int64_t n = zip_get_num_entries(z_, 0);
  for (zip_int64_t i = 0; i < n; ++i)
    out.push_back(zip_get_name(z_, static_cast<zip_uint64_t>(i), 0));
  return out;
}

std::string ZipArchive::read(const std::string& name) const {
  zip_stat_t st;
  if (zip_stat(z_, name.c_str(), 0, &st) != 0) throw Error(path_ + ": no member " + name);
  zip_file_t* f = zip_fopen(z_, name.c_str(), 0);
  if (!f) throw Error(path_ + ": cannot read member " + name);
  std::string out(static_cast<size_t>(st.size), '\0');
  zip_int64_t got = zip_fread(f, out.data(), st.size);
  zip_fclose(f);
  if (got != static_cast<zip_int64_t>(st.size)) throw Error(path_ + ": truncated member " + name);
  return out;
}

}  // namespace kdx::data
