#include "workers/data/fetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "workers/data/zip_archive.h"

namespace kdx::data {

const std::vector<RemoteDataset>& remote_datasets() {
  static const std::vector<RemoteDataset> d = {
      {"runne",
       "dialogue-evaluation/RuNNE",
       {
           {"public_data/train.jsonl", "runne/train.jsonl",
            "eff27da719e7c1c1077685b1439c21a83a2fb8ee61d886d1364eb7a3a8234cec"},
           {"public_data/dev.jsonl", "runne/dev.jsonl",
            "46b65e95375a9009ffaf443f4492a628a61c4a3eb230edc376db963d852080d3"},
           {"public_data/test.jsonl", "runne/test.jsonl",
            "e6d7e53154286b7fba38ba3713b09b6cd0c5cad43c3906614bc8f5d282097882"},
           {"public_data/test_with_answers.jsonl", "runne/test_with_answers.jsonl",
            "166787db8c98dd8a5a6833f9a6160be1b300b2c6eec23634c4005794c02e9637"},
           {"public_data/ners.txt", "runne/ners.txt",
            "e835d162ca89ddf7d46cfcb8643c96410b0c9401b68882239dc020054e9b7881"},
       }},
      {"rurebus",
       "dialogue-evaluation/RuREBus",
       {
           {"train_data/train_part_1.zip", "rurebus/train_part_1.zip",
            "2da67e407e0c2ecbc7f782a8cc6ac56b0c6bdba22cbe335974faa20413100d5a"},
           {"train_data/train_part_2.zip", "rurebus/train_part_2.zip",
            "dac009c610aef63cf103c9fc762f8c6f72debad2e7b347d6bf311b0d9aad2593"},
           {"train_data/train_part_3.zip", "rurebus/train_part_3.zip",
            "f83c30cdac238747de23b4e8a8bdc3f20cd0b80255d0cc659f2c9cc00cc2cab6"},
           {"test_data/test.zip", "rurebus/test.zip",
            "c6476d1d422f65f7fafa426806ede65a713146b500e8bdafe98b2d2de8d43b2e"},
           {"test_data/test_ner_only.zip", "rurebus/test_ner_only.zip",
            "d4dcbb0e28c0c54b04380d8b144cf29bec0fd699c3dc2342ccef5bc97e59cf6e"},
           {"test_data/test_full.zip", "rurebus/test_full.zip",
            "f2539e79a325738e1eeb6ff2738a5cc45ac31ff958e0e61080f4bbd1b78f50f0"},
       }},
  };
  return d;
}

namespace {

// curl as a child process, no shell: --fail turns HTTP errors into a non-zero exit.
void curl(const std::string& url, const std::string& out) {
  pid_t pid = ::fork();
  if (pid < 0) throw Error("cannot start curl");
  if (pid == 0) {
    const char* argv[] = {"curl",         "--fail",   "--location", "--silent",
                          "--show-error", "--retry",  "3",          "--connect-timeout",
                          "20",           "--output", out.c_str(),  url.c_str(),
                          nullptr};
    ::execvp("curl", const_cast<char**>(argv));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ::unlink(out.c_str());
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    throw Error("download failed (curl exit " + std::to_string(code) +
                (code == 127 ? ": curl not installed" : "") + "): " + url);
  }
}

}  // namespace

namespace {

// A program run without a shell (its arguments are never interpreted); throws naming it.
void run_program(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid < 0) throw Error("cannot start " + args[0]);
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 1);  // pip's progress; its errors stay on stderr
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::string cmd;
    for (auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
    throw Error("`" + cmd + "` failed (exit " + std::to_string(code) +
                (code == 127 ? ": not installed" : "") + ")");
  }
}

}  // namespace

const NavecRelease& navec_release() {
  static const NavecRelease r = {
      "natasha==1.6.0", "natasha-1.6.0-py3-none-any.whl",
      "natasha/data/emb/navec_news_v1_1B_250K_300d_100q.tar",
      "navec/navec_news_v1_1B_250K_300d_100q.tar",
      "f07270833d78523edc5781538d67038e95b43975e4a7ae757c693b687f9cbfca"};
  return r;
}

// navec's news vectors ship inside natasha's wheel on PyPI, which pip reaches wherever
// PyPI is configured (mirrors, proxies, certificates): pip fetches the wheel, kdx takes the
// one member out of it and checks its SHA-256.
std::string default_navec_path() {
  const char* cache = std::getenv("KDX_CACHE");
  const char* home = std::getenv("HOME");
  std::string base =
      cache && *cache ? cache : std::string(home && *home ? home : ".") + "/.cache/kdx";
  return base + "/" + navec_release().local;
}

std::string resolve_vectors_file(const std::string& file) {
  return file == "navec" ? default_navec_path() : file;
}

std::vector<std::string> fetch_navec(const FetchOptions& opt) {
  const auto& r = navec_release();
  std::string dest = opt.to + "/" + r.local;
  make_dirs(dest.substr(0, dest.rfind('/')));
  if (file_exists(dest) && sha256_file_hex(dest) == r.sha256)
    return {dest + ": already present, checksum ok"};
  std::string work = dest + ".download";
  run_program({"rm", "-rf", work});
  make_dirs(work);
  std::string wheel = work + "/" + r.wheel;
  std::string source;
  if (!opt.wheel_url.empty()) {
    source = opt.wheel_url;
    curl(opt.wheel_url, wheel);
  } else {
    source = "PyPI (" + r.requirement + ")";
    run_program({opt.python, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--dest", work, r.requirement});
  }
  std::string tar;
  {
    ZipArchive zip(wheel);
    tar = zip.read(r.member);
  }
  std::string got = sha256_hex(tar);
  run_program({"rm", "-rf", work});
  if (got != r.sha256)
    throw Error(source + ": " + r.member + ": SHA-256 mismatch (expected " + r.sha256 + ", got " +
                got + "); nothing was written to " + dest);
  write_file_atomic(dest, tar);
  return {dest + ": taken from " + r.wheel + " (" + source + "), checksum ok"};
}

std::vector<std::string> fetch_dataset(const std::string& name, const FetchOptions& opt) {
  if (name == "navec") return fetch_navec(opt);
  const RemoteDataset* ds = nullptr;
  for (auto& d : remote_datasets())
    if (d.name == name) ds = &d;
  if (!ds) throw Error("unknown data set '" + name + "' (known: runne, rurebus, navec)");
  std::vector<std::string> report;
  for (auto& f : ds->files) {
    std::string dest = opt.to + "/" + f.local;
    make_dirs(dest.substr(0, dest.rfind('/')));
    if (file_exists(dest) && sha256_file_hex(dest) == f.sha256) {
      report.push_back(dest + ": already present, checksum ok");
      continue;
    }
    std::string url =
        opt.base_url + "/" + ds->repository + "/" + opt.url_suffix_path + "/" + f.remote;
    std::string tmp = dest + ".part";
    curl(url, tmp);
    std::string got = sha256_file_hex(tmp);
    if (got != f.sha256) {
      ::unlink(tmp.c_str());
      throw Error(url + ": SHA-256 mismatch (expected " + f.sha256 + ", got " + got +
                  "); nothing was written to " + dest);
    }
    if (::rename(tmp.c_str(), dest.c_str()) != 0)
      throw Error("cannot rename " + tmp + " to " + dest);
    report.push_back(dest + ": downloaded, checksum ok");
  }
  return report;
}

}  // namespace kdx::data
