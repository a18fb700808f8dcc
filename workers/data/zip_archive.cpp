#include "workers/data/zip_archive.h"

#include <zip.h>

#include "common/error.h"
#include "common/input_file.h"

namespace kdx::data {

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  int err = 0;
  check_input(path, InputKind::Data);
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
  // The size in the archive's directory is a claim, not a fact: the buffer grows with what
  // the member really inflates to, up to a cap (a data set's text files are a few MB).
  constexpr zip_uint64_t kMaxMember = 256ull << 20;
  if ((st.valid & ZIP_STAT_SIZE) && st.size > kMaxMember)
    throw Error(path_ + ": member " + name + " claims " + std::to_string(st.size) +
                " bytes; more than 256 MiB is not a data set's text file");
  zip_file_t* f = zip_fopen(z_, name.c_str(), 0);
  if (!f) throw Error(path_ + ": cannot read member " + name);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    zip_int64_t got = zip_fread(f, buf, sizeof buf);
    if (got < 0) {
      zip_fclose(f);
      throw Error(path_ + ": cannot read member " + name + " (corrupt data)");
    }
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
    if (out.size() > kMaxMember) {
      zip_fclose(f);
      throw Error(path_ + ": member " + name + " inflates to more than 256 MiB");
    }
  }
  zip_fclose(f);
  if ((st.valid & ZIP_STAT_SIZE) && out.size() != st.size)
    throw Error(path_ + ": truncated member " + name);
  return out;
}

}  // namespace kdx::data
