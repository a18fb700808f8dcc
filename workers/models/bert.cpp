#include "workers/models/bert.h"

#include <cmath>

#include "common/error.h"
#include "workers/data/json_fields.h"

namespace kdx::models {

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}

BertConfig bert_config_from_hf(const nlohmann::json& j, const std::string& where,
                               const std::string& prefix) {
  data::JsonFields f(j, where, prefix);
  BertConfig c;
  c.vocab_size = f.integer("vocab_size");
  c.hidden = f.integer("hidden_size");
  c.layers = f.integer("num_hidden_layers");
  c.heads = f.integer("num_attention_heads");
  c.intermediate = f.integer("intermediate_size");
  c.max_position = f.integer("max_position_embeddings", 512);
  c.type_vocab = f.integer("type_vocab_size", 2);
  c.dropout = f.number("hidden_dropout_prob", 0.1);
  c.attention_dropout = f.number("attention_probs_dropout_prob", 0.1);
  c.layer_norm_eps = f.number("layer_norm_eps", 1e-12);
  c.activation = f.string("hidden_act", "gelu");
  c.initializer_range = f.number("initializer_range", 0.02);
  if (c.activation != "gelu" && c.activation != "relu" && c.activation != "gelu_new")
    f.fail("hidden_act", "\"" + c.activation + "\" is not supported (gelu, gelu_new, relu)");
  if (c.heads <= 0 || c.hidden % c.heads != 0)
    f.fail("hidden_size", "not a multiple of num_attention_heads");
  return c;
}

nlohmann::json bert_config_to_hf(const BertConfig& c) {
  return {{"architectures", {"BertForTokenClassification"}},
          {"model_type", "bert"},
          {"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden},
          {"num_hidden_layers", c.layers},
          {"num_attention_heads", c.heads},
          {"intermediate_size", c.intermediate},
          {"max_position_embeddings", c.max_position},
          {"type_vocab_size", c.type_vocab},
          {"hidden_dropout_prob", c.dropout},
          {"attention_probs_dropout_prob", c.attention_dropout},
          {"layer_norm_eps", c.layer_norm_eps},
          {"hidden_act", c.activation},
          {"initializer_range", c.initializer_range}};
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c) {
  word_embeddings =
      register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, c.hidden));
  position_embeddings =
      register_module("position_embeddings", torch::nn::Embedding(c.max_position, c.hidden));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab, c.hidden));
  LayerNorm = register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden}).eps(c.layer_norm_eps)));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  for (auto* e : {&word_embeddings, &position_embeddings, &token_type_embeddings})
    torch::nn::init::normal_((*e)->weight, 0.0, c.initializer_range);
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& ids) {
  auto T = ids.size(1);
  auto pos = torch::arange(T, ids.options()).unsqueeze(0);
  auto x = word_embeddings(ids) + position_embeddings(pos) + token_type_embeddings->weight[0];
  return dropout(LayerNorm(x));
}

namespace {

// Modules that only exist to reproduce Hugging Face's parameter names.
struct Holder : torch::nn::Module {};

torch::nn::Linear linear(int in, int out, double std) {
  auto l = torch::nn::Linear(in, out);
  torch::nn::init::normal_(l->weight, 0.0, std);
  torch::nn::init::zeros_(l->bias);
  return l;
}

}  // namespace

BertLayerImpl::BertLayerImpl(const BertConfig& cfg) : c(cfg) {
  attention = register_module("attention", std::make_shared<Holder>());
  attention_self = attention->register_module("self", std::make_shared<Holder>());
  attention_output = attention->register_module("output", std::make_shared<Holder>());
  intermediate = register_module("intermediate", std::make_shared<Holder>());
  output = register_module("output", std::make_shared<Holder>());
  query = attention_self->register_module("query", linear(c.hidden, c.hidden, c.initializer_range));
  key = attention_self->register_module("key", linear(c.hidden, c.hidden, c.initializer_range));
  value = attention_self->register_module("value", linear(c.hidden, c.hidden, c.initializer_range));
  attn_dense =
      attention_output->register_module("dense", linear(c.hidden, c.hidden, c.initializer_range));
  attn_norm = attention_output->register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden}).eps(c.layer_norm_eps)));
  inter_dense =
      intermediate->register_module("dense", linear(c.hidden, c.intermediate, c.initializer_range));
  out_dense =
      output->register_module("dense", linear(c.intermediate, c.hidden, c.initializer_range));
  out_norm = output->register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden}).eps(c.layer_norm_eps)));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  attn_dropout = register_module("attn_dropout", torch::nn::Dropout(c.attention_dropout));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  auto B = x.size(0), T = x.size(1);
  int64_t dh = c.hidden / c.heads;
  auto split = [&](const torch::Tensor& t) { return t.view({B, T, c.heads, dh}).transpose(1, 2); };
  auto q = split(query(x)), k = split(key(x)), v = split(value(x));
  auto scores =
      torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(dh)) + additive_mask;
  auto probs = attn_dropout(torch::softmax(scores, -1));
  auto ctx = torch::matmul(probs, v).transpose(1, 2).contiguous().view({B, T, c.hidden});
  auto a = attn_norm(dropout(attn_dense(ctx)) + x);
  auto h = inter_dense(a);
  if (c.activation == "relu")
    h = torch::relu(h);
  else if (c.activation == "gelu_new")
    h = torch::gelu(h, "tanh");
  else
    h = torch::gelu(h);
  return out_norm(dropout(out_dense(h)) + a);
}

BertModelImpl::BertModelImpl(const BertConfig& c) : config(c) {
  embeddings = register_module("embeddings", BertEmbeddings(c));
  encoder = register_module("encoder", std::make_shared<Holder>());
  layer = encoder->register_module("layer", torch::nn::ModuleList());
  for (int i = 0; i < c.layers; ++i) layer->push_back(BertLayer(c));
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
  auto x = embeddings(ids);
  // [B, 1, 1, T]: 0 where attended, a large negative number on padding (as Hugging Face).
  auto additive = (1.0 - mask.to(x.dtype()).unsqueeze(1).unsqueeze(2)) * -10000.0;
  for (auto& l : *layer) x = l->as<BertLayerImpl>()->forward(x, additive);
  return x;
}

BertTaggerImpl::BertTaggerImpl(const BertConfig& c, int cols, int cls) {
  columns = cols;
  classes = cls;
  bert = register_module("bert", BertModel(c));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  classifier = register_module("classifier", linear(c.hidden, cols * cls, c.initializer_range));
}

torch::Tensor BertTaggerImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask,
                                      const torch::Tensor&) {
  return classifier(dropout(bert(ids, mask)));
}

nlohmann::json BertTaggerImpl::describe() const {
  return {{"arch", "bert"},
          {"columns", columns},
          {"classes", classes},
          {"bert", bert_config_to_hf(bert->config)}};
}

}  // namespace kdx::models
