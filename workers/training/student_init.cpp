#include "workers/training/student_init.h"

#include <algorithm>
#include <set>

#include "common/error.h"
#include "common/log.h"
#include "workers/models/safetensors.h"

namespace kdx::training {

std::vector<int64_t> trimmed_vocabulary(const std::vector<const data::EncodedDataset*>& sets,
                                        const data::Vocab& vocab) {
  std::vector<char> seen(vocab.size(), 0);
  for (auto* set : sets)
    for (auto& ex : set->examples)
      for (int id : ex.ids)
        if (id >= 0 && static_cast<size_t>(id) < seen.size()) seen[static_cast<size_t>(id)] = 1;
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    int id = vocab.id(special);
    if (id >= 0) seen[static_cast<size_t>(id)] = 1;
  }
  std::vector<int64_t> kept;
  for (size_t i = 0; i < seen.size(); ++i)
    if (seen[i]) kept.push_back(static_cast<int64_t>(i));
  return kept;
}

torch::Tensor vocabulary_map(const std::vector<int64_t>& kept, const data::Vocab& vocab) {
  int unk = vocab.unk();
  auto row_of_unk = std::lower_bound(kept.begin(), kept.end(), unk);
  if (unk < 0 || row_of_unk == kept.end() || *row_of_unk != unk)
    throw Error("trimmed vocabulary: [UNK] is not kept");
  auto map =
      torch::full({static_cast<int64_t>(vocab.size())}, row_of_unk - kept.begin(), torch::kInt64);
  auto* m = map.data_ptr<int64_t>();
  for (size_t row = 0; row < kept.size(); ++row) m[kept[row]] = static_cast<int64_t>(row);
  return map;
}

torch::Tensor embedding_from_teacher(const torch::Tensor& teacher_rows, int emb) {
  torch::NoGradGuard g;
  auto rows = teacher_rows.to(torch::kFloat64);
  const int64_t H = rows.size(1);
  if (emb == H) return teacher_rows.to(torch::kFloat32).clone();
  auto scale = rows.std().item<double>();
  if (emb > H) {
    auto extra = torch::randn({rows.size(0), emb - H}, torch::kFloat64) * scale * 0.1;
    return torch::cat({rows, extra}, 1).to(torch::kFloat32);
  }
  auto centred = rows - rows.mean(0, true);
  auto cov = torch::matmul(centred.t(), centred) / static_cast<double>(rows.size(0));
  auto eig = torch::linalg_eigh(cov);  // ascending eigenvalues
  auto top = std::get<1>(eig).narrow(1, H - emb, emb).flip(1);
  auto out = torch::matmul(centred, top);
  double out_scale = out.std().item<double>();
  if (out_scale > 0) out = out * (scale / out_scale);
  return out.to(torch::kFloat32);
}

std::shared_ptr<models::StudentTaggerImpl> make_student(const RunSpec& spec, const Prepared& p,
                                                        const std::string& teacher_dir) {
  models::StudentConfig c;
  c.arch = spec.param_string("arch");
  c.emb = spec.param_int("emb");
  c.hidden = spec.param_int("hidden");
  c.layers = spec.param_int("layers");
  c.proj = spec.param_int("proj");
  c.dropout = spec.param_double("dropout");
  c.highway_bias = spec.params.value("highway_bias", 0.0);
  c.rescale = spec.params.value("rescale", false);
  // Absent (run.json files older than the keys): no attention dropout, no front-end.
  c.attention_dropout = spec.params.value("attention_dropout", 0.0);
  c.residual = spec.params.value("residual", false);
  if (c.residual && c.arch != "lstm")
    throw Error(spec.path + ": params.residual: LSTM only (SRU and SRU++ have their highway)");
  if (spec.params.contains("forget_bias") && c.arch != "lstm")
    throw Error(spec.path + ": params.forget_bias: LSTM only (SRU and SRU++: highway_bias)");
  if (spec.params.contains("conv")) {
    const auto& conv = spec.params["conv"];  // types and ranges checked with run.json
    if (!conv.contains("channels"))
      throw Error(spec.path +
                  ": params.conv.channels: missing (each conv layer's output channels, e.g. "
                  "[768, 384]; [] for no front-end)");
    c.conv.channels = conv["channels"].get<std::vector<int>>();
    c.conv.kernels = conv.value("kernels", c.conv.kernels);
    c.conv.dropout = conv.value("dropout", c.conv.dropout);
    auto bad = models::check_conv_options(c.conv);
    if (!bad.empty()) throw Error(spec.path + ": params.conv." + bad);
  }
  c.columns = p.scheme.columns();
  c.classes = p.scheme.classes();
  const auto& vocab = p.tokenizer->vocab();
  std::vector<int64_t> kept;
  if (spec.params.value("vocab", std::string("full")) == "trimmed") {
    kept = trimmed_vocabulary({&p.train}, vocab);
    c.vocab_size = static_cast<int>(kept.size());
    c.input_vocab = static_cast<int>(vocab.size());
    spdlog::info("vocabulary trimmed to the training text: {} of {} wordpieces", kept.size(),
                 vocab.size());
  } else {
    c.vocab_size = static_cast<int>(vocab.size());
  }
  if (p.words.dim > 0) {
    const auto& v = spec.params["vectors"];
    c.vectors.rows = p.words.size();
    c.vectors.dim = p.words.dim;
    c.vectors.freeze = v.value("freeze", true);
    c.vectors.join = v.value("join", std::string("concat"));
    c.vectors.file = v.value("file", std::string());
    c.vectors.format = v.value("format", std::string("navec"));
  }
  torch::manual_seed(static_cast<uint64_t>(spec.param_int64("seed")));
  auto student = std::make_shared<models::StudentTaggerImpl>(c);
  if (!kept.empty()) student->vocab_map.copy_(vocabulary_map(kept, vocab));
  if (spec.params.contains("forget_bias"))
    models::init_forget_bias(*student, spec.param_double("forget_bias"));
  if (student->vectors && !p.words.vectors.empty())
    student->vectors->load_rows(p.words.vectors.data(), p.words.size() - 1);
  if (spec.params.value("init_embedding", false)) {
    torch::NoGradGuard no_grad;
    auto raw = models::read_safetensors(teacher_dir + "/model.safetensors");
    auto it = raw.find("bert.embeddings.word_embeddings.weight");
    if (it == raw.end())
      throw Error(teacher_dir + "/model.safetensors: no word embeddings to initialise from");
    auto values = models::to_float32(it->second, it->first);
    auto rows = torch::from_blob(values.data(), it->second.shape, torch::kFloat32);
    if (!kept.empty()) rows = rows.index_select(0, torch::tensor(kept, torch::kInt64));
    student->embedding->weight.copy_(embedding_from_teacher(rows, c.emb));
    spdlog::debug("embeddings initialised from the teacher's ({} -> {} dimensions)",
                  it->second.shape.at(1), c.emb);
  }
  return student;
}

}  // namespace kdx::training
