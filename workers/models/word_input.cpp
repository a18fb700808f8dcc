#include "workers/models/word_input.h"

#include "common/error.h"
#include "workers/data/json_fields.h"

namespace kdx::models {

VectorsConfig vectors_config_from_json(const nlohmann::json& j, const std::string& where) {
  data::JsonFields f(j, where, "vectors");
  VectorsConfig c;
  c.rows = f.integer("rows");
  c.dim = f.integer("dim");
  c.freeze = f.boolean("freeze", true);
  c.join = f.string("join", "concat");
  c.file = f.string("file", "");
  c.format = f.string("format", "");
  if (c.rows < 1 || c.dim < 1) throw Error(where + ": vectors: rows and dim must be positive");
  if (c.join != "concat" && c.join != "sum")
    throw Error(where + ": vectors.join: '" + c.join + "' is not concat or sum");
  return c;
}

nlohmann::json vectors_config_to_json(const VectorsConfig& c) {
  return {{"rows", c.rows}, {"dim", c.dim},   {"freeze", c.freeze},
          {"join", c.join}, {"file", c.file}, {"format", c.format}};
}

WordVectorInputImpl::WordVectorInputImpl(const VectorsConfig& c, int emb) : config(c), emb_(emb) {
  table = register_parameter("table", torch::zeros({c.rows, c.dim}), !c.freeze);
  // Small: the unknown vector starts near the origin, where no pretrained word lies.
  unknown = register_parameter("unknown", torch::randn({c.dim}) * 0.01);
  if (c.join == "sum") proj = register_module("proj", torch::nn::Linear(c.dim, emb));
}

torch::Tensor WordVectorInputImpl::forward(const torch::Tensor& words) {
  if (!words.defined())
    throw Error("this model reads pretrained word vectors, but its input has no word rows");
  auto x = torch::embedding(table, words);
  auto none = words.eq(0).unsqueeze(-1).to(x.scalar_type());
  x = x + none * unknown;
  return proj ? proj(x) : x;
}

void WordVectorInputImpl::load_rows(const float* data, int64_t count) {
  if (count != config.rows - 1)
    throw Error("word vectors: " + std::to_string(count) + " rows for a table of " +
                std::to_string(config.rows - 1));
  torch::NoGradGuard g;
  if (count > 0)
    table.narrow(0, 1, count)
        .copy_(torch::from_blob(const_cast<float*>(data), {count, config.dim}, torch::kFloat32));
}

}  // namespace kdx::models
