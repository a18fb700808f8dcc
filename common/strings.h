// Small string helpers shared by the orchestrator and the worker.
#pragma once

#include <string>
#include <vector>

namespace kdx {

std::vector<std::string> split(const std::string& s, char sep);
std::string join(const std::vector<std::string>& parts, const std::string& sep);
std::string trim(const std::string& s);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
// "1h02m", "3m05s", "12s": for humans, not for parsing back.
std::string format_duration(double seconds);

}  // namespace kdx
