// The tiny deployment example: load a model written by `kdx-worker export` and tag text
// read from standard input, one entity per line (start, end, type, surface).
//   kdx-tag results/runs/smoke/<id>/export <<< "Владимир Путин посетил Казань."
#include <iostream>
#include <sstream>

#include "workers/data/document.h"
#include "workers/training/export.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: kdx-tag EXPORT_DIR < text\n";
    return 2;
  }
  try {
    auto model = kdx::training::load_exported(argv[1]);
    std::stringstream in;
    in << std::cin.rdbuf();
    auto text = kdx::data::decode_utf8(in.str(), "stdin");
    for (auto& e : kdx::training::tag_text(model, text)) {
      auto surface =
          text.substr(static_cast<size_t>(e.start), static_cast<size_t>(e.end - e.start));
      for (auto& c : surface)
        if (c == U'\n' || c == U'\t') c = U' ';  // one entity per line, whatever it spans
      std::cout << e.start << "\t" << e.end << "\t" << e.type << "\t"
                << kdx::data::encode_utf8(surface) << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "kdx-tag: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
