// SHA-256 (OpenSSL's libcrypto) as lowercase hex: run ids, data checksums, cache keys.
#pragma once

#include <string>

namespace kdx {

std::string sha256_hex(const std::string& data);
// Streams the file; throws kdx::Error naming the path when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace kdx
