// `kdx data fetch`: downloads the public data sets from their GitHub repositories with
// curl, checks each file's SHA-256 against the checksums kept here, and lays them out
// as DIR/runne/... and DIR/rurebus/... A file that fails its checksum is never left behind.
#pragma once

#include <string>
#include <vector>

namespace kdx::data {

struct RemoteFile {
  std::string remote;  // path inside the repository
  std::string local;   // path under the data root
  std::string sha256;
};

struct RemoteDataset {
  std::string name;
  std::string repository;  // owner/name on GitHub
  std::vector<RemoteFile> files;
};

const std::vector<RemoteDataset>& remote_datasets();

struct FetchOptions {
  std::string to = "data";
  // Files are fetched from <base_url>/<repository>/<remote>; default GitHub's raw file
  // service. Tests point it at a file:// mirror.
  std::string base_url = "https://github.com";
  std::string url_suffix_path = "raw/HEAD";
};

// Returns a line per file ("ok", "already present", ...). Throws kdx::Error on failure.
std::vector<std::string> fetch_dataset(const std::string& name, const FetchOptions& options);

}  // namespace kdx::data
