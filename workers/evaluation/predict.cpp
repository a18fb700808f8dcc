#include "workers/evaluation/predict.h"

#include "common/error.h"

namespace kdx::evaluation {

torch::Tensor batch_word_rows(const data::Batch& b, torch::Device device) {
  if (b.words.empty()) return {};
  return torch::from_blob(const_cast<int64_t*>(b.words.data()), {b.size, b.len}, torch::kInt64)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}

std::vector<data::Document> predict(models::TaggerImpl& tagger, const data::EncodedDataset& data,
                                    int pad_id, int batch_size, torch::Device device,
                                    decoding::Decoder decoder) {
  bool was_training = tagger.is_training();
  tagger.eval();
  const bool greedy = decoder == decoding::Decoder::Greedy;
  std::vector<std::vector<int>> tags(data.examples.size());
  std::vector<std::vector<float>> doc_logits;  // Viterbi: per document, its windows' rows
  const int cols = data.scheme.columns(), classes = data.scheme.classes();
  // Similar lengths together: less padding per batch.
  std::vector<int> order(data.examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return data.examples[static_cast<size_t>(a)].ids.size() <
           data.examples[static_cast<size_t>(b)].ids.size();
  });
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<int> idx(
        order.begin() + static_cast<long>(start),
        order.begin() +
            static_cast<long>(std::min(order.size(), start + static_cast<size_t>(batch_size))));
    auto b = data::make_batch(data, idx, pad_id);
    auto ids = torch::from_blob(b.ids.data(), {b.size, b.len}, torch::kInt64).to(device);
    auto mask = torch::from_blob(b.mask.data(), {b.size, b.len}, torch::kInt64).to(device);
    auto words = batch_word_rows(b, device);
    if (tagger.word_rows() > 0 && !words.defined())
      throw Error("a model that reads word vectors was given examples without word rows");
    auto logits = tagger.infer(ids, mask, words).view({b.size, b.len, cols, classes});
    if (!greedy) {
      auto host = logits.to(torch::kCPU, torch::kFloat32).contiguous();
      const float* rows = host.data_ptr<float>();
      const size_t per_example = static_cast<size_t>(b.len) * static_cast<size_t>(cols * classes);
      for (int r = 0; r < b.size; ++r)
        decoding::add_window_logits(data, static_cast<size_t>(idx[static_cast<size_t>(r)]),
                                    rows + static_cast<size_t>(r) * per_example, doc_logits);
      continue;
    }
    auto best = logits.argmax(-1).to(torch::kCPU).to(torch::kInt32).contiguous();
    auto acc = best.accessor<int, 3>();
    for (int r = 0; r < b.size; ++r) {
      auto& ex = data.examples[static_cast<size_t>(idx[static_cast<size_t>(r)])];
      auto& out = tags[static_cast<size_t>(idx[static_cast<size_t>(r)])];
      out.resize(ex.ids.size() * static_cast<size_t>(cols));
      for (size_t t = 0; t < ex.ids.size(); ++t)
        for (int c = 0; c < cols; ++c)
          out[t * static_cast<size_t>(cols) + static_cast<size_t>(c)] =
              acc[r][static_cast<long>(t)][c];
    }
  }
  tagger.train(was_training);
  if (!greedy) return decoding::decode_documents(data, decoder, doc_logits);
  return data::decode_predictions(data, tags);
}

data::NerScores score(const std::string& format, const std::vector<data::Document>& gold,
                      const std::vector<data::Document>& pred,
                      const std::vector<std::string>& types) {
  if (format == "runne") return data::score_runne(gold, pred, types);
  return data::score_exact(gold, pred, types);
}

}  // namespace kdx::evaluation
