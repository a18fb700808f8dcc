// Resource values (resources.time, resources.mem) and byte sizes (KDX_MAX_*_SIZE): each
// parse is checked against the same arithmetic done in 128 bits, so a wrap-around (the
// "307445734561825860:17" that killed a teacher after 1.2 s) cannot pass unnoticed.
#include <cstdlib>
#include <string>

#include "common/input_file.h"
#include "common/params.h"
#include "common/strings.h"

namespace {

// -1: not digits; -2: too large for `max`.
__int128 digits(const std::string& s, __int128 max) {
  if (s.empty()) return -1;
  __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    if (v <= max) v = v * 10 + (c - '0');
  }
  return v > max ? -2 : v;
}

__int128 reference_time(const std::string& s) {
  const __int128 kMax = 1000000000000LL;
  std::string rest = s;
  __int128 days = 0;
  bool has_days = false;
  if (auto dash = s.find('-'); dash != std::string::npos) {
    days = digits(s.substr(0, dash), kMax);
    if (days < 0) return days;
    rest = s.substr(dash + 1);
    has_days = true;
  }
  auto parts = kdx::split(rest, ':');
  if (parts.empty() || parts.size() > 3) return -1;
  __int128 v[3] = {0, 0, 0};
  bool over = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    v[i] = digits(parts[i], kMax);
    if (v[i] == -1) return -1;
    over = over || v[i] == -2;
  }
  if (over) return -2;
  __int128 secs = has_days            ? v[0] * 3600 + v[1] * 60 + v[2]
                  : parts.size() == 1 ? v[0] * 60
                  : parts.size() == 2 ? v[0] * 60 + v[1]
                                      : v[0] * 3600 + v[1] * 60 + v[2];
  return days * 86400 + secs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  long long t = kdx::parse_time_limit(s);
  __int128 want = reference_time(s);
  if (static_cast<__int128>(t) != want) std::abort();
  long long m = kdx::parse_mem_mb(s);
  if (m >= 0 && !s.empty() && s.back() >= '0' && s.back() <= '9' &&
      static_cast<__int128>(m) != digits(s, 1000000000000LL))
    std::abort();
  long long b = kdx::parse_byte_size(s);
  if (b >= 0 && !s.empty() && s.back() >= '0' && s.back() <= '9' &&
      static_cast<__int128>(b) != digits(s, static_cast<__int128>(INT64_MAX)))
    std::abort();
  for (auto& def : kdx::resource_params()) kdx::check_param(def, s);
  return 0;
}
