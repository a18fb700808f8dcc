#include "orchestrator/commands.h"

#include <sys/stat.h>

#include <cstdio>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/log.h"
#include "common/strings.h"
#include "orchestrator/registry.h"
#include "orchestrator/report.h"
#include "orchestrator/report_render.h"
#include "orchestrator/spec.h"
#include "orchestrator/table.h"
#include "workers/data/encode.h"
#include "workers/data/fetch.h"
#include "workers/data/metrics.h"
#include "workers/data/readers.h"
#include "workers/data/vocab_builder.h"

namespace kdx {
namespace {

struct Options {
  std::string format;
  std::vector<std::string> gold, pred;
  std::string types_file;
  bool json = false;
  std::string fetch_to, base_url, wheel_url;
  std::vector<std::string> fetch_names;
  std::vector<std::string> files;
  std::string vocab;
  int vocab_size = 8000;
  bool lowercase = false;
  std::string experiment, report_format = "md", out_dir;
  std::vector<std::string> group_by;
};
Options opt;

std::vector<std::string> load_types(const std::string& format, const std::string& types_file,
                                    const std::string& gold_file) {
  if (format == "rurebus") {
    auto& t = data::rurebus_types();
    return {t.begin(), t.end()};
  }
  std::set<std::string> t;
  if (!types_file.empty()) {
    for (auto& l : split(read_input(types_file, InputKind::Data), '\n'))
      if (!trim(l).empty()) t.insert(trim(l));
  } else {
    t = data::runne_types_near(gold_file);
  }
  if (t.empty())
    throw Error("no entity types: put ners.txt beside " + gold_file + " or pass --types FILE");
  return {t.begin(), t.end()};
}

std::vector<data::Document> read_for_eval(const std::string& format,
                                          const std::vector<std::string>& files,
                                          const std::set<std::string>& types,
                                          std::vector<std::string>* span_warnings = nullptr) {
  if (format == "runne") return data::read_runne(files, types, false, span_warnings);
  if (format == "rurebus") return data::read_brat(files, types, false, span_warnings);
  return data::read_conll(files);
}

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", x * 100);
  return buf;
}

int run_eval() {
  auto types = load_types(opt.format, opt.types_file, opt.gold.front());
  std::set<std::string> known(types.begin(), types.end());
  auto gold = read_for_eval(opt.format, opt.gold, known);
  // Predictions are validated by the scorer (unknown types are its error, with its wording).
  std::vector<std::string> warnings;
  auto pred = read_for_eval(opt.format, opt.pred, {}, &warnings);
  for (auto& w : warnings) spdlog::warn("{}", w);
  auto scores = opt.format == "runne" ? data::score_runne(gold, pred, types)
                                      : data::score_exact(gold, pred, types);
  if (opt.json) {
    std::cout << scores.to_json().dump(2) << "\n";
    return 0;
  }
  std::cout << "Mention F1: " << pct(scores.mention.f1) << "\n";
  std::cout << "Mention recall: " << pct(scores.mention.recall) << "\n";
  std::cout << "Mention precision: " << pct(scores.mention.precision) << "\n";
  std::cout << "Macro F1: " << pct(scores.macro_f1) << "\n";
  if (opt.format == "runne")
    std::cout << "Macro F1 few-shot: " << pct(scores.macro_f1_few_shot) << "\n";
  Table t;
  t.header = {"TYPE", "GOLD", "PRED", "TP", "P", "R", "F1"};
  t.right_align = {false, true, true, true, true, true, true};
  for (auto& [type, p] : scores.per_type)
    t.rows.push_back({type, std::to_string(p.tp + p.fn), std::to_string(p.tp + p.fp),
                      std::to_string(p.tp), pct(p.precision), pct(p.recall), pct(p.f1)});
  std::cout << render_text(t);
  return 0;
}

int run_fetch() {
  data::FetchOptions fo;
  fo.to = opt.fetch_to.empty() ? resolve_data_root("") : opt.fetch_to;
  if (!opt.base_url.empty()) fo.base_url = opt.base_url;
  fo.wheel_url = opt.wheel_url;
  for (auto& name : opt.fetch_names)
    for (auto& line : data::fetch_dataset(name, fo)) std::cout << line << "\n";
  return 0;
}

int run_roundtrip() {
  auto docs = data::read_dataset(opt.format, opt.files);
  data::TokenizerOptions to;
  to.lowercase = opt.lowercase;
  data::Vocab vocab = opt.vocab.empty()
                          ? data::build_vocab(docs, static_cast<size_t>(opt.vocab_size), to)
                          : data::load_vocab(opt.vocab);
  data::Tokenizer tok(vocab, to);
  auto types = data::types_of(docs);
  long entities = 0;
  for (auto& d : docs) entities += static_cast<long>(d.entities.size());
  std::cout << opt.format << ": " << docs.size() << " documents, " << entities << " entities, "
            << types.size() << " types; vocabulary " << vocab.size()
            << (opt.vocab.empty() ? " (built from these files)" : "") << "\n";
  Table t;
  t.header = {"ENCODING", "GOLD ENTITIES", "SURVIVE", "FRACTION"};
  t.right_align = {false, true, true, true};
  for (const auto& scheme : data::scheme_names()) {
    auto r = data::round_trip(docs, tok, data::make_scheme(scheme, types));
    char frac[32];
    std::snprintf(frac, sizeof frac, "%.2f%%", 100.0 * r.fraction());
    t.rows.push_back({scheme, std::to_string(r.gold), std::to_string(r.survived), frac});
  }
  std::cout << render_text(t);
  return 0;
}

int run_report(const std::string& registry) {
  Registry reg(registry, Registry::Access::ReadOrReadOnly);
  reg.check_integrity();
  auto data = build_report(reg, opt.experiment, opt.group_by);
  auto render = [&](const std::string& f) {
    if (f == "csv") return render_csv(data);
    if (f == "latex") return render_latex(data);
    if (f == "json") return render_json(data);
    if (f == "html") return render_html(data);
    return render_markdown(data);
  };
  if (!opt.out_dir.empty()) {
    std::string cmd_dir = opt.out_dir;
    ::mkdir(cmd_dir.c_str(), 0755);
    const std::pair<const char*, const char*> files[] = {{"md", "report.md"},
                                                         {"csv", "report.csv"},
                                                         {"latex", "report.tex"},
                                                         {"json", "report.json"},
                                                         {"html", "report.html"}};
    for (auto& [f, name] : files) write_file_atomic(cmd_dir + "/" + name, render(f));
    int curves = 0;
    for (auto& d : data.datasets) {
      write_file_atomic(cmd_dir + "/" + d.dataset + ".svg", render_svg(d));
      for (auto& g : curve_groups(data, d.dataset)) {
        write_file_atomic(cmd_dir + "/" + d.dataset + "-curves-" + g + ".svg",
                          render_curves_svg(data, d.dataset, g));
        ++curves;
      }
    }
    std::cerr << "kdx: report written to " << cmd_dir
              << "/report.{md,csv,tex,json,html}, one SVG per dataset (F1 vs compression and "
                 "latency) and "
              << curves << " learning-curve SVGs\n";
  }
  std::cout << render(opt.report_format);
  return 0;
}

CLI::App* eval_cmd = nullptr;
CLI::App* report_cmd = nullptr;
CLI::App* data_cmd = nullptr;
CLI::App* fetch_cmd = nullptr;
CLI::App* roundtrip_cmd = nullptr;

}  // namespace

void add_worker_side_commands(CLI::App& app) {
  report_cmd = app.add_subcommand(
      "report", "Tables (and plots) of compression, speed-up and F1 from the registry");
  report_cmd->add_option("--experiment,-e", opt.experiment, "only this experiment (default: all)");
  report_cmd->add_option("--format", opt.report_format, "md | csv | latex | json | html")
      ->check(CLI::IsMember({"md", "csv", "latex", "json", "html"}))
      ->capture_default_str();
  report_cmd->add_option("--out", opt.out_dir,
                         "also write every format and the SVG plots into this directory");
  report_cmd
      ->add_option("--group-by", opt.group_by,
                   "configuration keys, e.g. arch,hidden (default: all but seed)")
      ->delimiter(',');

  eval_cmd = app.add_subcommand("eval", "Score predictions with the shared task's official metric");
  eval_cmd->add_option("--format", opt.format, "runne | rurebus | conll")
      ->required()
      ->check(CLI::IsMember({"runne", "rurebus", "conll"}));
  eval_cmd
      ->add_option("--gold", opt.gold,
                   "gold file(s): RuNNE jsonl (texts optional), brat zip/folder")
      ->required();
  eval_cmd->add_option("--pred", opt.pred, "prediction file(s) in the same format")->required();
  eval_cmd->add_option("--types", opt.types_file,
                       "RuNNE type list (default: ners.txt beside the gold file)");
  eval_cmd->add_flag("--json", opt.json, "machine-readable scores");

  data_cmd = app.add_subcommand("data", "Get and inspect data sets");
  data_cmd->require_subcommand(1);
  fetch_cmd = data_cmd->add_subcommand(
      "fetch",
      "Download RuNNE / RuREBus from their GitHub repositories, and navec's Russian news word "
      "vectors out of natasha's wheel on PyPI (with pip), checksum-verified");
  fetch_cmd->add_option("datasets", opt.fetch_names, "runne, rurebus and/or navec")
      ->required()
      ->check(CLI::IsMember({"runne", "rurebus", "navec"}));
  fetch_cmd->add_option("--to", opt.fetch_to,
                        "data root to fill (default: the data root kdx would use)");
  fetch_cmd->add_option(
      "--base-url", opt.base_url,
      "mirror serving <owner>/<repo>/raw/HEAD/<path> (default https://github.com)");
  fetch_cmd->add_option("--wheel-url", opt.wheel_url,
                        "navec: natasha-1.6.0-py3-none-any.whl from this URL instead of pip");
  roundtrip_cmd = data_cmd->add_subcommand(
      "roundtrip", "Fraction of gold entities that survive tag encode -> decode");
  roundtrip_cmd->add_option("--format", opt.format, "runne | rurebus | conll")
      ->required()
      ->check(CLI::IsMember({"runne", "rurebus", "conll"}));
  roundtrip_cmd->add_option("files", opt.files, "data files")->required();
  roundtrip_cmd->add_option("--vocab", opt.vocab, "vocab.txt (default: build one from the files)");
  roundtrip_cmd->add_option("--vocab-size", opt.vocab_size, "size of the built vocabulary")
      ->capture_default_str();
  roundtrip_cmd->add_flag("--lowercase", opt.lowercase, "lower-case and strip accents");
}

int run_worker_side_command(CLI::App&, const std::string& registry) {
  if (*report_cmd) return run_report(registry);
  if (*eval_cmd) return run_eval();
  if (*fetch_cmd) return run_fetch();
  if (*roundtrip_cmd) return run_roundtrip();
  return 0;
}

}  // namespace kdx
