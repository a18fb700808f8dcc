// ReportData -> text: Markdown (GitHub), CSV (one row per run, for pandas), LaTeX
// (booktabs), JSON, and one self-contained HTML page with an SVG plot per dataset.
#pragma once

#include <string>

#include "orchestrator/report.h"

namespace kdx {

std::string render_markdown(const ReportData& r);
std::string render_csv(const ReportData& r);
std::string render_latex(const ReportData& r);
std::string render_json(const ReportData& r);
std::string render_html(const ReportData& r);
// F1 against compression (log axis) for one dataset: a marker per architecture, KD filled
// and no-KD hollow, the teacher's F1 as a dashed reference line.
std::string render_svg(const DatasetReport& d);

}  // namespace kdx
