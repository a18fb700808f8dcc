#include "workers/data/readers.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/data/zip_archive.h"

namespace kdx::data {
namespace {

std::string where(const std::string& file, int line) {
  return file + ":" + std::to_string(line);
}

// Empty when the span fits the text, else why not.
std::string span_problem(const Entity& e, size_t text_len, const std::string& at) {
  if (e.start < 0 || e.end < 0)
    return at + ": negative offset in entity " + e.type + " [" + std::to_string(e.start) + ", " +
           std::to_string(e.end) + ")";
  if (e.end <= e.start)
    return at + ": entity " + e.type + " ends (" + std::to_string(e.end) + ") before it starts (" +
           std::to_string(e.start) + ")";
  if (static_cast<uint64_t>(e.end) > text_len)
    return at + ": entity " + e.type + " [" + std::to_string(e.start) + ", " +
           std::to_string(e.end) + ") lies outside the text (" + std::to_string(text_len) +
           " characters)";
  return {};
}

// Training data: an error. Predictions: kept (the scorer counts it as a false positive).
void check_span(const Entity& e, size_t text_len, const std::string& at,
                std::vector<std::string>* warnings) {
  auto problem = span_problem(e, text_len, at);
  if (problem.empty()) return;
  if (!warnings) throw Error(problem);
  warnings->push_back(problem + "; scored as a false positive");
}

void check_type(const std::string& type, const std::set<std::string>& types,
                const std::string& at) {
  if (!types.empty() && !types.count(type))
    throw Error(at + ": unknown entity type '" + type + "' (known: " + known_types(types) + ")");
}

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_dir_recursive(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error(dir + ": cannot open directory");
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string full = dir + "/" + n;
    if (is_dir(full)) {
      for (auto& sub : list_dir_recursive(full)) out.push_back(n + "/" + sub);
    } else {
      out.push_back(n);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Parses one .ann file's T lines.
std::vector<Entity> parse_ann(const std::string& content, const std::string& name, size_t text_len,
                              const std::set<std::string>& types,
                              std::vector<std::string>* warnings) {
  std::vector<Entity> out;
  std::istringstream in(content);
  std::string line;
  for (int ln = 1; std::getline(in, line); ++ln) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty() || line[0] != 'T') continue;  // R (relations), A, N, #: not entities
    std::string at = where(name, ln);
    auto tab1 = line.find('\t');
    auto tab2 = tab1 == std::string::npos ? std::string::npos : line.find('\t', tab1 + 1);
    if (tab2 == std::string::npos)
      throw Error(
          at + ": cannot parse brat line (expected 'T<id><TAB><type> <start> <end><TAB><text>'): " +
          line);
    std::string mid = line.substr(tab1 + 1, tab2 - tab1 - 1);
    auto parts = split(mid, ' ');
    Entity e;
    e.type = parts[0];
    try {
      // Discontinuous spans ("a b;c d") are covered from the first start to the last end.
      auto first = mid.find(' ');
      auto ranges = split(mid.substr(first + 1), ';');
      e.start = std::stoll(split(ranges.front(), ' ').at(0));
      e.end = std::stoll(split(ranges.back(), ' ').at(1));
    } catch (const std::exception&) {
      throw Error(at + ": cannot parse offsets '" + mid + "' (expected '<type> <start> <end>')");
    }
    check_type(e.type, types, at);
    check_span(e, text_len, at, warnings);
    out.push_back(e);
  }
  return out;
}

}  // namespace

std::string known_types(const std::set<std::string>& types) {
  std::vector<std::string> shown;
  for (auto& t : types) {
    if (types.size() > 12 && shown.size() == 10) break;
    shown.push_back(t);
  }
  std::string out = join(shown, ", ");
  if (shown.size() < types.size()) out += ", ... (" + std::to_string(types.size()) + " in all)";
  return out;
}

std::set<std::string> runne_types_near(const std::string& file) {
  auto slash = file.rfind('/');
  std::string path =
      (slash == std::string::npos ? std::string(".") : file.substr(0, slash)) + "/ners.txt";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  std::set<std::string> out;
  for (auto& l : split(read_input(path, InputKind::Data), '\n'))
    if (!trim(l).empty()) out.insert(trim(l));
  return out;
}

std::vector<Document> read_runne(const std::vector<std::string>& files,
                                 const std::set<std::string>& types, bool require_text,
                                 std::vector<std::string>* span_warnings) {
  struct Partial {
    Document doc;
    bool has_text = false;
    std::string entities_at;                          // where the entities came from, for errors
    std::vector<std::pair<Entity, std::string>> raw;  // entity + location
  };
  std::map<std::string, Partial> by_id;
  std::vector<std::string> order;
  for (auto& file : files) {
    // Texts and answers may come from different files (test.jsonl + test_with_answers.jsonl,
    // merged by id); one file naming an id twice, or two files giving its entities, would
    // otherwise have the last line win without a word.
    std::map<std::string, int> seen_here;
    std::string content = read_input(file, InputKind::Data);
    std::istringstream in(content);
    std::string line;
    for (int ln = 1; std::getline(in, line); ++ln) {
      if (trim(line).empty()) continue;
      std::string at = where(file, ln);
      decode_utf8(line, at);  // a clear encoding error before JSON's own
      auto j = parse_json(line);
      if (j.is_discarded() || !j.is_object()) throw Error(at + ": not a JSON object");
      if (!j.contains("id")) throw Error(at + ": missing field \"id\"");
      std::string id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
      if (auto [it, fresh] = seen_here.emplace(id, ln); !fresh)
        throw Error(at + ": document id " + id + " appears again (first at line " +
                    std::to_string(it->second) + ")");
      if (!by_id.count(id)) order.push_back(id);
      Partial& p = by_id[id];
      p.doc.id = id;
      if (j.contains("sentences")) {
        if (!j["sentences"].is_string()) throw Error(at + ": field \"sentences\" must be a string");
        p.doc.text = decode_utf8(j["sentences"].get<std::string>(), at);
        p.has_text = true;
      }
      if (j.contains("ners")) {
        if (!j["ners"].is_array()) throw Error(at + ": field \"ners\" must be a list");
        if (!p.entities_at.empty())
          throw Error(at + ": document id " + id +
                      ": its entities (\"ners\") were given already at " + p.entities_at);
        p.entities_at = at;
        p.raw.clear();
        for (auto& n : j["ners"]) {
          // Offsets within +/- 2^62: every sum below stays inside 64 bits.
          auto offset = [](const nlohmann::json& v) {
            return v.is_number_integer() && v.get<int64_t>() > -(int64_t{1} << 62) &&
                   v.get<int64_t>() < (int64_t{1} << 62);
          };
          if (!n.is_array() || n.size() != 3 || !offset(n[0]) || !offset(n[1]) || !n[2].is_string())
            throw Error(at +
                        ": field \"ners\": each entity must be [start, end, \"TYPE\"] with "
                        "integer offsets, got " +
                        n.dump());
          Entity e{n[0].get<int64_t>(), n[1].get<int64_t>() + 1,
                   n[2].get<std::string>()};  // end inclusive in the file
          if (!span_warnings && n[1].get<int64_t>() < n[0].get<int64_t>())
            throw Error(at + ": entity " + e.type + " ends (" +
                        std::to_string(n[1].get<int64_t>()) + ") before it starts (" +
                        std::to_string(e.start) + ")");
          check_type(e.type, types, at);
          p.raw.emplace_back(e, at);
        }
      }
    }
  }
  std::vector<Document> out;
  for (auto& id : order) {
    Partial& p = by_id[id];
    if (require_text && !p.has_text && !p.raw.empty())
      throw Error(p.raw.front().second + ": document id " + id +
                  " has entities but no text in any of the files (add the file with its "
                  "\"sentences\", e.g. test.jsonl)");
    for (auto& [e, at] : p.raw) {
      if (p.has_text)
        check_span(e, p.doc.text.size(), at, span_warnings);
      else if (span_warnings && e.end <= e.start)
        span_warnings->push_back(at + ": entity " + e.type +
                                 " ends before it starts; scored "
                                 "as a false positive");
      p.doc.entities.push_back(e);
    }
    out.push_back(std::move(p.doc));
  }
  return out;
}

std::vector<Document> read_texts(const std::string& path) {
  std::vector<Document> docs;
  if (ends_with(path, ".jsonl")) {
    docs = read_runne({path}, {}, true);
  } else if (ends_with(path, ".zip") || is_dir(path)) {
    for (auto& d : read_brat({path}, {}, false))
      if (!d.text.empty()) docs.push_back(std::move(d));
  } else if (ends_with(path, ".conll")) {
    docs = read_conll({path});
  } else {
    Document d;
    d.id = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    d.text = decode_utf8(read_input(path, InputKind::Data), path);
    docs.push_back(std::move(d));
  }
  for (auto& d : docs) d.entities.clear();
  return docs;
}

const std::set<std::string>& rurebus_types() {
  static const std::set<std::string> t = {"ACT", "BIN", "CMP", "ECO", "INST", "MET", "QUA", "SOC"};
  return t;
}

std::vector<Document> read_brat(const std::vector<std::string>& sources,
                                const std::set<std::string>& types, bool require_pairs,
                                std::vector<std::string>* span_warnings) {
  std::vector<Document> out;
  for (auto& src : sources) {
    std::unique_ptr<ZipArchive> zip;
    std::vector<std::string> names;
    if (is_dir(src)) {
      names = list_dir_recursive(src);
    } else {
      zip = std::make_unique<ZipArchive>(src);
      names = zip->names();
      std::sort(names.begin(), names.end());
    }
    std::set<std::string> present(names.begin(), names.end());
    auto read = [&](const std::string& n) {
      return zip ? zip->read(n) : read_input(src + "/" + n, InputKind::Data);
    };
    auto label = [&](const std::string& n) { return zip ? src + ":" + n : src + "/" + n; };
    std::set<std::string> bases;
    for (auto& n : names)
      if (ends_with(n, ".txt") || ends_with(n, ".ann")) bases.insert(n.substr(0, n.size() - 4));
    for (auto& base : bases) {
      bool txt = present.count(base + ".txt"), ann = present.count(base + ".ann");
      if (require_pairs && !ann)
        throw Error(label(base + ".txt") + ": no matching " + base + ".ann");
      if (require_pairs && !txt)
        throw Error(label(base + ".ann") + ": no matching " + base + ".txt");
      Document d;
      d.id = base.substr(base.rfind('/') == std::string::npos ? 0 : base.rfind('/') + 1);
      if (txt) d.text = decode_utf8(read(base + ".txt"), label(base + ".txt"));
      if (ann) {
        std::string content = read(base + ".ann");
        decode_utf8(content, label(base + ".ann"));  // validates the encoding
        size_t limit = txt ? d.text.size() : static_cast<size_t>(-1) / 2;
        d.entities = parse_ann(content, label(base + ".ann"), limit, types, span_warnings);
      }
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::vector<Document> read_conll(const std::vector<std::string>& files,
                                 const std::set<std::string>& types) {
  std::vector<Document> out;
  for (auto& file : files) {
    std::istringstream in(read_input(file, InputKind::Data));
    std::string line;
    Document doc;
    Entity open;
    bool in_entity = false;
    auto close = [&] {
      if (in_entity) doc.entities.push_back(open);
      in_entity = false;
    };
    auto flush = [&] {
      close();
      if (!doc.text.empty()) {
        doc.id = std::to_string(out.size());
        out.push_back(std::move(doc));
      }
      doc = Document{};
    };
    for (int ln = 1; std::getline(in, line); ++ln) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (trim(line).empty() || starts_with(line, "-DOCSTART-")) {
        flush();
        continue;
      }
      std::string at = where(file, ln);
      auto cols = split(line, '\t');
      if (cols.size() < 2) cols = split(line, ' ');
      if (cols.size() < 2) throw Error(at + ": expected 'token<TAB>tag': " + line);
      std::u32string tok = decode_utf8(cols.front(), at);
      std::string tag = cols.back();
      if (!doc.text.empty()) doc.text.push_back(U' ');
      int start = static_cast<int>(doc.text.size());
      doc.text += tok;
      int end = static_cast<int>(doc.text.size());
      if (tag == "O") {
        close();
      } else if (tag.size() > 2 && (tag[0] == 'B' || tag[0] == 'I') && tag[1] == '-') {
        std::string type = tag.substr(2);
        check_type(type, types, at);
        if (tag[0] == 'B' || !in_entity || open.type != type) {
          close();
          open = {start, end, type};
          in_entity = true;
        } else {
          open.end = end;
        }
      } else {
        throw Error(at + ": tag '" + tag + "' is not O, B-TYPE or I-TYPE");
      }
    }
    flush();
  }
  return out;
}

std::vector<Document> read_dataset(const std::string& format, const std::vector<std::string>& files,
                                   const std::set<std::string>& types) {
  if (format == "runne")
    return read_runne(files, !types.empty() || files.empty() ? types : runne_types_near(files[0]));
  if (format == "rurebus") return read_brat(files, types.empty() ? rurebus_types() : types);
  if (format == "conll") return read_conll(files, types);
  throw Error("unknown dataset format '" + format + "' (expected runne, rurebus, conll)");
}

}  // namespace kdx::data
