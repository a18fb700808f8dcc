#include "workers/data/writers.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace kdx::data {

void write_runne(const std::vector<Document>& docs, const std::string& path) {
  std::string out;
  for (auto& d : docs) {
    auto ners = nlohmann::json::array();
    for (auto& e : d.entities) ners.push_back({e.start, e.end - 1, e.type});
    nlohmann::json id;
    bool numeric = !d.id.empty() && d.id.find_first_not_of("0123456789") == std::string::npos;
    id = numeric ? nlohmann::json(std::stoll(d.id)) : nlohmann::json(d.id);
    out += nlohmann::json{{"id", id}, {"ners", ners}}.dump() + "\n";
  }
  write_file_atomic(path, out);
}

void write_brat(const std::vector<Document>& docs, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  for (auto& d : docs) {
    std::string out;
    int n = 1;
    for (auto& e : d.entities)
      out +=
          "T" + std::to_string(n++) + "\t" + e.type + " " + std::to_string(e.start) + " " +
          std::to_string(e.end) + "\t" +
          encode_utf8(d.text.substr(std::min<size_t>(static_cast<size_t>(e.start), d.text.size()),
                                    static_cast<size_t>(e.end - e.start))) +
          "\n";
    write_file_atomic(dir + "/" + d.id + ".ann", out);
  }
}

void write_predictions(const std::string& format, const std::vector<Document>& docs,
                       const std::string& path) {
  if (format == "runne") return write_runne(docs, path);
  if (format == "rurebus") return write_brat(docs, path);
  if (format == "conll") return write_runne(docs, path);  // spans, not tokens: jsonl is lossless
  throw Error("unknown dataset format '" + format + "'");
}

}  // namespace kdx::data
