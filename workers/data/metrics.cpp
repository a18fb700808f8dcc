#include "workers/data/metrics.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <set>
#include <tuple>

#include "common/error.h"

namespace kdx::data {

const std::vector<std::string>& runne_few_shot_types() {
  static const std::vector<std::string> t = {"DISEASE", "PENALTY", "WORK_OF_ART"};
  return t;
}

namespace {

using Span = std::tuple<int, int, std::string>;

std::set<Span> spans(const Document& d) {
  std::set<Span> s;
  for (auto& e : d.entities) s.insert({e.start, e.end, e.type});
  return s;
}

// The scorer's arithmetic, in its order: recall and precision are 0 when tp is 0,
// F1 is 0 when precision is 0.
Prf prf(long tp, long fp, long fn) {
  Prf p;
  p.tp = tp;
  p.fp = fp;
  p.fn = fn;
  p.recall = tp == 0 ? 0. : static_cast<double>(tp) / static_cast<double>(tp + fn);
  p.precision = tp == 0 ? 0. : static_cast<double>(tp) / static_cast<double>(tp + fp);
  p.f1 = p.precision == 0 ? 0. : 2.0 * p.recall * p.precision / (p.recall + p.precision);
  return p;
}

NerScores count(const std::vector<Document>& gold,
                const std::map<std::string, const Document*>& pred_by_id,
                const std::vector<std::string>& types) {
  long tp = 0, fp = 0, fn = 0;
  std::map<std::string, std::array<long, 3>> sub;
  for (auto& t : types) sub[t] = {0, 0, 0};
  for (auto& g : gold) {
    auto it = pred_by_id.find(g.id);
    std::set<Span> gs = spans(g), ps;
    if (it != pred_by_id.end()) ps = spans(*it->second);
    for (auto& s : gs) (ps.count(s) ? tp : fn)++;
    for (auto& s : ps)
      if (!gs.count(s)) ++fp;
    for (auto& s : gs) sub[std::get<2>(s)][ps.count(s) ? 0 : 2]++;
    for (auto& s : ps)
      if (!gs.count(s)) sub[std::get<2>(s)][1]++;
  }
  NerScores out;
  out.mention = prf(tp, fp, fn);
  for (auto& [t, c] : sub) out.per_type[t] = prf(c[0], c[1], c[2]);
  return out;
}

}  // namespace

NerScores score_runne(const std::vector<Document>& gold, const std::vector<Document>& pred,
                      const std::vector<std::string>& types) {
  std::set<std::string> known(types.begin(), types.end());
  for (auto& p : pred)
    for (size_t i = 0; i < p.entities.size(); ++i)
      if (!known.count(p.entities[i].type))
        throw Error(p.entities[i].type + " is unknown type name from line " +
                    std::to_string(i + 1) + " (document id " + p.id + ")");
  if (gold.size() != pred.size())
    throw Error(
        "number of lines in ground truth is not equal to number of lines in solution passed: " +
        std::to_string(gold.size()) + " != " + std::to_string(pred.size()));
  std::set<std::string> gold_ids, pred_ids;
  for (auto& g : gold) gold_ids.insert(g.id);
  for (auto& p : pred) pred_ids.insert(p.id);
  if (gold_ids != pred_ids) {
    std::vector<std::string> diff;
    std::set_symmetric_difference(gold_ids.begin(), gold_ids.end(), pred_ids.begin(),
                                  pred_ids.end(), std::back_inserter(diff));
    std::string d;
    for (auto& x : diff) d += (d.empty() ? "" : ", ") + x;
    throw Error("ids don't match. Difference: {" + d + "}");
  }
  std::map<std::string, const Document*> by_id;
  for (auto& p : pred) by_id[p.id] = &p;  // the scorer maps each id to its last line
  NerScores s = count(gold, by_id, types);
  const auto& few = runne_few_shot_types();
  double sum = 0, sum_few = 0;
  int n = 0;
  for (auto& t : types) {
    auto& p = s.per_type[t];
    bool is_few = std::find(few.begin(), few.end(), t) != few.end();
    if (is_few)
      sum_few += p.f1;
    else if (p.tp + p.fn > 0) {
      sum += p.f1;
      ++n;
    }
  }
  s.macro_f1 = n > 0 ? sum / static_cast<double>(n) : 0.;
  s.macro_f1_few_shot = sum_few / static_cast<double>(few.size());
  return s;
}

NerScores score_exact(const std::vector<Document>& gold, const std::vector<Document>& pred,
                      const std::vector<std::string>& types) {
  std::map<std::string, const Document*> by_id;
  std::set<std::string> gold_ids;
  for (auto& g : gold) gold_ids.insert(g.id);
  for (auto& p : pred) {
    if (!gold_ids.count(p.id))
      throw Error("prediction for document '" + p.id + "' which is not in the gold data");
    by_id[p.id] = &p;
  }
  std::set<std::string> known(types.begin(), types.end());
  for (auto& p : pred)
    for (auto& e : p.entities)
      if (!known.count(e.type))
        throw Error("prediction has unknown type '" + e.type + "' (document " + p.id + ")");
  NerScores s = count(gold, by_id, types);
  double sum = 0;
  int n = 0;
  for (auto& [t, p] : s.per_type)
    if (p.tp + p.fn > 0) {
      sum += p.f1;
      ++n;
    }
  s.macro_f1 = n ? sum / n : 0.;
  return s;
}

nlohmann::json NerScores::to_json() const {
  auto prf_json = [](const Prf& p) {
    return nlohmann::json{{"precision", p.precision},
                          {"recall", p.recall},
                          {"f1", p.f1},
                          {"tp", p.tp},
                          {"fp", p.fp},
                          {"fn", p.fn}};
  };
  nlohmann::json types = nlohmann::json::object();
  for (auto& [t, p] : per_type) types[t] = prf_json(p);
  return {{"mention", prf_json(mention)},
          {"macro_f1", macro_f1},
          {"macro_f1_few_shot", macro_f1_few_shot},
          {"per_type", types}};
}

}  // namespace kdx::data
