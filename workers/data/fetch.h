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
  // navec: natasha's wheel from this URL (tests: a file:// one) instead of pip from PyPI.
  std::string wheel_url;
  std::string python = "python3";
};

// navec's news vectors inside natasha's wheel: what to download and what to keep.
struct NavecRelease {
  std::string requirement;  // for pip
  std::string wheel;        // its file name
  std::string member;       // the tar inside it
  std::string local;        // where it goes under --to
  std::string sha256;       // of the tar
};
const NavecRelease& navec_release();
std::vector<std::string> fetch_navec(const FetchOptions& options);
// Where `make navec` and `kdx data fetch navec --to ~/.cache/kdx` put the tar:
// $KDX_CACHE (default ~/.cache/kdx) / navec_release().local.
std::string default_navec_path();
// A `vectors.file` of an experiment: "navec" is default_navec_path(), anything else a path.
std::string resolve_vectors_file(const std::string& file);

// name: runne, rurebus or navec. Returns a line per file ("ok", "already present", ...). Throws
// kdx::Error on failure.
std::vector<std::string> fetch_dataset(const std::string& name, const FetchOptions& options);

}  // namespace kdx::data
