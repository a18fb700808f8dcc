// predict() with each decoder, over a tagger whose logits depend only on the token id.
#include "workers/evaluation/predict.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kdx::evaluation {
namespace {

// Logits looked up per token id: what a model that ignores context would say.
class TableTagger : public models::TaggerImpl {
 public:
  TableTagger(torch::Tensor table, int cols, int k) : table_(std::move(table)) {
    columns = cols;
    classes = k;
  }
  using models::TaggerImpl::forward;
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor&,
                        const torch::Tensor&) override {
    return table_.index_select(0, ids.flatten()).view({ids.size(0), ids.size(1), -1});
  }
  nlohmann::json describe() const override { return {{"arch", "table"}}; }

 private:
  torch::Tensor table_;
};

TEST(Predict, ViterbiDecodesWholeWordsAcrossWindowCuts) {
  data::Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "##c", "."}) v.add(s);
  data::Tokenizer tok(v, {});
  auto scheme = data::make_scheme("per_type_bilou", {"X"});
  // a b ##c a b ##c . in windows of 2 tokens: the first "bc" is cut between its pieces.
  data::Document d{"0", data::decode_utf8("a bc a bc .", "t"), {}};
  auto enc = data::encode_dataset({d}, tok, scheme, 4);
  ASSERT_EQ(enc.examples.size(), 4u);
  // Probabilities O B I L U per token id: "b" favours U, "##c" O over L.
  std::vector<std::vector<double>> p(v.size(), {0.9, 0.025, 0.025, 0.025, 0.025});
  p[5] = {0.1, 0.3, 0.0001, 0.0001, 0.6};
  p[6] = {0.5, 0.0001, 0.05, 0.45, 0.0001};
  auto table = torch::zeros({static_cast<long>(v.size()), 5});
  for (size_t id = 0; id < p.size(); ++id)
    for (int c = 0; c < 5; ++c)
      table[static_cast<long>(id)][c] = static_cast<float>(std::log(p[id][static_cast<size_t>(c)]));
  TableTagger tagger(table, 1, 5);
  auto greedy = predict(tagger, enc, v.pad());
  ASSERT_EQ(greedy.size(), 1u);
  EXPECT_EQ(greedy[0].entities, (std::vector<data::Entity>{{2, 3, "X"}, {7, 8, "X"}}));
  auto viterbi = predict(tagger, enc, v.pad(), 3, torch::kCPU, decoding::Decoder::Viterbi);
  ASSERT_EQ(viterbi.size(), 1u);
  EXPECT_EQ(viterbi[0].id, "0");
  EXPECT_EQ(viterbi[0].entities, (std::vector<data::Entity>{{2, 4, "X"}, {7, 9, "X"}}));
}

}  // namespace
}  // namespace kdx::evaluation
