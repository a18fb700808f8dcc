// ReportData -> text: Markdown (GitHub), CSV (one row per run, for pandas), LaTeX
// (booktabs), JSON, and one self-contained HTML page with an SVG plot per dataset.
#pragma once

#include <string>
#include <vector>

#include "orchestrator/report.h"

namespace kdx {

std::string render_markdown(const ReportData& r);
std::string render_csv(const ReportData& r);
std::string render_latex(const ReportData& r);
std::string render_json(const ReportData& r);
std::string render_html(const ReportData& r);
// Two panels for one dataset: F1 against compression and F1 against CPU latency (log axes),
// a marker shape per architecture, a colour per distillation setting (CE only hollow), a bar
// of +/- one standard deviation over seeds, the teacher's F1 as a dashed line.
std::string render_svg(const DatasetReport& d);
// The dataset's stage groups with learning curves ("teacher", then each architecture).
std::vector<std::string> curve_groups(const ReportData& r, const std::string& dataset);
// Per epoch, for every run of the group: dev F1, and the CE and KD terms.
std::string render_curves_svg(const ReportData& r, const std::string& dataset,
                              const std::string& group);

}  // namespace kdx
