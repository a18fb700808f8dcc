// Plain-text tables for the terminal: columns sized to their widest cell.
#pragma once

#include <string>
#include <vector>

namespace kdx {

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> right_align;  // per column; default left
};

std::string render_text(const Table& t);

}  // namespace kdx
