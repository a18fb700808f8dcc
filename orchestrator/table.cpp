#include "orchestrator/table.h"

#include <algorithm>

namespace kdx {
namespace {

// Display width of UTF-8 text: count code points, not bytes.
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

std::string render_text(const Table& t) {
  std::vector<size_t> w(t.header.size(), 0);
  for (size_t i = 0; i < t.header.size(); ++i) w[i] = width(t.header[i]);
  for (auto& r : t.rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string c = i < cells.size() ? cells[i] : "";
      std::string pad(w[i] - width(c), ' ');
      bool right = i < t.right_align.size() && t.right_align[i];
      out += right ? pad + c : c + (i + 1 < w.size() ? pad : "");
      if (i + 1 < w.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(t.header);
  for (auto& r : t.rows) out += line(r);
  return out;
}

}  // namespace kdx
