#include "orchestrator/grid.h"

#include <cmath>
#include <random>
#include <set>

#include "common/error.h"
#include "common/params.h"

namespace kdx {

bool matches(const nlohmann::json& point, const nlohmann::json& condition) {
  for (auto& [key, want] : condition.items()) {
    const nlohmann::json* have = get_path(point, key);
    if (!have) return false;
    if (want.is_array()) {
      // A list is "any of" its items, unless the value is itself a list equal to it (conv
      // kernels, channels): `kernels: [1, 3, 5]` matches those kernels.
      bool any = have->is_array() && normalize_numbers(want) == normalize_numbers(*have);
      for (auto& w : want) any = any || normalize_numbers(w) == normalize_numbers(*have);
      if (!any) return false;
    } else if (want.is_object() && have->is_object()) {
      if (!matches(*have, want)) return false;
    } else if (normalize_numbers(want) != normalize_numbers(*have)) {
      return false;
    }
  }
  return true;
}

std::vector<nlohmann::json> sample_random(const RandomSpec& random) {
  std::vector<nlohmann::json> out;
  std::mt19937_64 rng(random.seed);
  auto unit = [&] { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); };
  for (int i = 0; i < random.samples; ++i) {
    nlohmann::json p = nlohmann::json::object();
    for (auto& [key, d] : random.params) {
      nlohmann::json v;
      if (d.kind == "choice") {
        v = d.args[static_cast<size_t>(unit() * static_cast<double>(d.args.size()))];
      } else if (d.kind == "int") {
        long lo = d.args[0].get<long>(), hi = d.args[1].get<long>();
        v = lo + static_cast<long>(unit() * static_cast<double>(hi - lo + 1));
      } else if (d.kind == "uniform") {
        double lo = d.args[0].get<double>(), hi = d.args[1].get<double>();
        v = lo + unit() * (hi - lo);
      } else {  // loguniform
        double lo = std::log(d.args[0].get<double>()), hi = std::log(d.args[1].get<double>());
        v = std::exp(lo + unit() * (hi - lo));
      }
      set_path(p, key, v);
    }
    out.push_back(p);
  }
  return out;
}

std::vector<nlohmann::json> expand_grid(const StudentSpec& s, const std::string& file) {
  // The size first: a few long lists multiply into more runs than memory holds.
  double count = 1;
  for (auto& axis : s.grid) count *= static_cast<double>(axis.values.size());
  if (!s.zip.empty()) count *= static_cast<double>(s.zip[0].values.size());
  if (s.random.samples > 0) count *= s.random.samples;
  count += static_cast<double>(s.include.size());
  if (count > kMaxGridRuns)
    throw Error(file + ": students: the grid has " + format_number(count) +
                " points; kdx plans at most " + std::to_string(kMaxGridRuns) +
                " runs per experiment (split it into several experiments)");
  // Start with one empty point and multiply it by each dimension in turn.
  std::vector<nlohmann::json> points{nlohmann::json::object()};
  auto multiply = [&](const std::vector<nlohmann::json>& factors) {
    std::vector<nlohmann::json> next;
    next.reserve(points.size() * factors.size());
    for (auto& p : points)
      for (auto& f : factors) {
        nlohmann::json q = p;
        deep_merge(q, f);
        next.push_back(std::move(q));
      }
    points = std::move(next);
  };
  for (auto& axis : s.grid) {
    std::vector<nlohmann::json> factors;
    for (auto& v : axis.values) {
      nlohmann::json f = nlohmann::json::object();
      set_path(f, axis.key, v);
      factors.push_back(f);
    }
    multiply(factors);
  }
  if (!s.zip.empty()) {
    std::vector<nlohmann::json> factors;
    for (size_t i = 0; i < s.zip[0].values.size(); ++i) {
      nlohmann::json f = nlohmann::json::object();
      for (auto& axis : s.zip) set_path(f, axis.key, axis.values[i]);
      factors.push_back(f);
    }
    multiply(factors);
  }
  if (s.random.samples > 0) multiply(sample_random(s.random));

  // A section with only `include:` means exactly those points, not "fixed" plus them.
  bool has_product = !s.grid.empty() || !s.zip.empty() || s.random.samples > 0;
  if (!has_product && !s.include.empty()) points.clear();

  std::vector<nlohmann::json> out;
  out.reserve(points.size() + s.include.size());
  std::set<std::string> seen;
  auto add = [&](nlohmann::json full) {
    if (seen.insert(full.dump()).second) out.push_back(std::move(full));
  };
  size_t excluded = 0;
  for (auto& p : points) {
    nlohmann::json full = s.fixed;
    deep_merge(full, p);
    full = normalize_numbers(full);
    bool drop = false;
    for (auto& cond : s.exclude) drop = drop || matches(full, cond);
    if (drop) {
      ++excluded;
      continue;
    }
    add(std::move(full));
  }
  for (auto& inc : s.include) {
    nlohmann::json full = s.fixed;
    deep_merge(full, inc);
    add(normalize_numbers(full));
  }
  if (out.empty()) {
    throw Error(file + ": students: the grid has no runs" +
                (excluded ? " (all " + std::to_string(excluded) +
                                " points are excluded by students.exclude)"
                          : std::string()));
  }
  return out;
}

}  // namespace kdx
