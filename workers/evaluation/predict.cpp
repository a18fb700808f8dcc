#include "workers/evaluation/predict.h"

#include "common/error.h"
#include "workers/models/safetensors.h"

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

int write_reference_logits(models::TaggerImpl& tagger, const data::EncodedDataset& data, int pad_id,
                           int max_windows, int length, int batch_size, const std::string& path) {
  const int n = std::min<int>(max_windows, static_cast<int>(data.examples.size()));
  if (n < 1) throw Error(path + ": no windows to write (the documents encode to none)");
  for (int i = 0; i < n; ++i)
    length =
        std::max<int>(length, static_cast<int>(data.examples[static_cast<size_t>(i)].ids.size()));
  bool was_training = tagger.is_training();
  tagger.eval();
  const int64_t out_cols = data.scheme.columns() * data.scheme.classes();
  auto ids = torch::full({n, length}, pad_id, torch::kInt64);
  auto mask = torch::zeros({n, length}, torch::kInt64);
  torch::Tensor words;
  if (tagger.word_rows() > 0) words = torch::zeros({n, length}, torch::kInt64);
  auto id_at = ids.accessor<int64_t, 2>(), mask_at = mask.accessor<int64_t, 2>();
  int64_t* word_at = words.defined() ? words.data_ptr<int64_t>() : nullptr;
  for (int i = 0; i < n; ++i) {
    auto& ex = data.examples[static_cast<size_t>(i)];
    if (words.defined() && ex.words.size() != ex.ids.size())
      throw Error("a model that reads word vectors was given examples without word rows");
    for (size_t t = 0; t < ex.ids.size(); ++t) {
      id_at[i][static_cast<int64_t>(t)] = ex.ids[t];
      mask_at[i][static_cast<int64_t>(t)] = 1;
      if (word_at) word_at[i * length + static_cast<int64_t>(t)] = ex.words[t];
    }
  }
  std::vector<torch::Tensor> parts;
  for (int start = 0; start < n; start += batch_size) {
    int size = std::min(batch_size, n - start);
    auto w = words.defined() ? words.narrow(0, start, size) : torch::Tensor();
    parts.push_back(tagger.infer(ids.narrow(0, start, size), mask.narrow(0, start, size), w)
                        .to(torch::kCPU, torch::kFloat32)
                        .reshape({size, length, out_cols}));
  }
  tagger.train(was_training);
  auto raw = [](const torch::Tensor& t, const std::string& dtype) {
    auto c = t.contiguous();
    models::RawTensor r;
    r.dtype = dtype;
    r.shape = c.sizes().vec();
    r.bytes.assign(static_cast<const char*>(c.data_ptr()), c.nbytes());
    return r;
  };
  std::map<std::string, models::RawTensor> out = {{"ids", raw(ids, "I64")},
                                                  {"mask", raw(mask, "I64")},
                                                  {"logits", raw(torch::cat(parts, 0), "F32")}};
  if (words.defined()) out["words"] = raw(words, "I64");
  models::write_safetensors(path, out);
  return n;
}

data::NerScores score(const std::string& format, const std::vector<data::Document>& gold,
                      const std::vector<data::Document>& pred,
                      const std::vector<std::string>& types) {
  if (format == "runne") return data::score_runne(gold, pred, types);
  return data::score_exact(gold, pred, types);
}

}  // namespace kdx::evaluation
