// Recurrent students: embedding (optionally the teacher's, projected) -> optionally a
// convolutional front-end (Malakhov 2022's ConvLSTM / ConvSRU / ConvSRU++) -> bidirectional
// LSTM, SRU or SRU++ layers -> linear tag head with the teacher's output layout.
#pragma once

#include <map>
#include <string>

#include "workers/models/conv_frontend.h"
#include "workers/models/recurrent_kernels.h"
#include "workers/models/sru.h"
#include "workers/models/tagger.h"
#include "workers/models/word_input.h"

namespace kdx::models {

struct StudentConfig {
  std::string arch = "lstm";  // lstm | sru | srupp
  int vocab_size = 0;         // embedding rows
  // > 0: the model reads token ids of a larger (the teacher's) vocabulary of this size and
  // maps them to its own rows through `vocab_map` (a trimmed vocabulary); 0: ids are rows.
  int input_vocab = 0;
  int emb = 128;
  int hidden = 128;
  int layers = 1;
  int proj = 0;  // SRU++ attention size; 0 = hidden
  double dropout = 0.1;
  double highway_bias = 0.0;       // SRU/SRU++: initial reset-gate bias
  bool rescale = false;            // SRU/SRU++: scale the highway input
  double attention_dropout = 0.0;  // SRU++: dropout on the attention weights
  // LSTM: every layer after the first adds its input to its output (both 2 x hidden wide), so
  // a deep stack starts as close to a one-layer one as its first layer is.
  bool residual = false;
  ConvOptions conv;       // no channels: no front-end (the embedding feeds the RNN)
  VectorsConfig vectors;  // pretrained word vectors joined with the embedding; or none
  // Models of kdx 0.1 only: embeddings sized like the teacher's, then projected to `emb`.
  int teacher_hidden = 0;
  int columns = 1, classes = 3;
};
// From a model.json object; `where` (its path) prefixes every error, which names the field:
// "<where>: hidden: expected an integer, got \"64\"".
StudentConfig student_config_from_json(const nlohmann::json& j, const std::string& where = "");
nlohmann::json student_config_to_json(const StudentConfig& c);

class StudentTaggerImpl : public TaggerImpl {
 public:
  explicit StudentTaggerImpl(const StudentConfig& c);
  using TaggerImpl::forward;
  using TaggerImpl::infer;
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask,
                        const torch::Tensor& words) override;
  // On CPU in float: the fused kernels of recurrent_kernels.h where this CPU has them and the
  // hidden size is a multiple of 16 (LSTM and SRU/SRU++; the recurrent matrices packed once and
  // kept until the weights change). Otherwise, LSTM: whichever of two kernels is faster here,
  // measured on the first call per batch size (both scale linearly with length, so one length
  // decides): the hand-written loop (one GEMM for all input projections, then per step one
  // matrix product and an elementwise update) or ATen's fused LSTM (forward() in eval mode);
  // SRU: forward() in eval mode (its float-loop kernel).
  torch::Tensor infer(const torch::Tensor& ids, const torch::Tensor& mask,
                      const torch::Tensor& words) override;
  int word_rows() const override { return config.vectors.rows; }
  // "auto" (fused where it can run, else measure), "fused", "loop" or "aten";
  // KDX_LSTM_KERNEL sets the default. SRU/SRU++ take "auto" or "aten" (forward() in eval mode).
  std::string lstm_kernel;
  // Threads of the fused LSTM: 0 takes ATen's (torch::set_num_threads); with 2 or more, a
  // layer's two directions run side by side or each step is split across them
  // (kernels::lstm_layer).
  int lstm_threads = 0;
  // The kernel "auto" chose for a batch size, or "" before the first such call.
  std::string chosen_lstm_kernel(int64_t batch) const;
  nlohmann::json describe() const override;
  torch::Tensor word_embeddings() override { return embedding->weight; }

  StudentConfig config;
  torch::nn::Embedding embedding{nullptr};
  WordVectorInput vectors{nullptr};
  torch::nn::Linear emb_proj{nullptr};
  ConvFrontend conv{nullptr};
  // Per layer, one unidirectional LSTM per direction; the backward one reads each sequence
  // reversed within its own length. (Packed sequences would do the same, several times slower.)
  torch::nn::ModuleList lstm_fwd{nullptr}, lstm_bwd{nullptr};
  torch::nn::ModuleList sru{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear head{nullptr};
  torch::Tensor vocab_map;  // [input_vocab] int64 -> embedding row; undefined without trimming

 private:
  torch::Tensor embed(const torch::Tensor& ids, const torch::Tensor& words);
  // The recurrent stack's input at inference: embed() and the front-end's eval-mode pass.
  torch::Tensor rnn_input_infer(const torch::Tensor& ids, const torch::Tensor& mask,
                                const torch::Tensor& words);
  torch::Tensor lstm_infer(torch::Tensor x, const torch::Tensor& lengths);
  torch::Tensor lstm_fused(torch::Tensor x, const torch::Tensor& lengths);
  bool fused_ok(const torch::Tensor& ids) const;
  // Per layer and direction, W_hh packed for the fused kernel, and what it was packed from
  // (the tensor's storage and version: an optimizer step or a load repacks).
  std::vector<kernels::PackedMatrix> packed_;
  std::vector<std::pair<const void*, int64_t>> packed_from_;
  torch::Tensor aten_infer(const torch::Tensor& ids, const torch::Tensor& mask,
                           const torch::Tensor& words);
  std::map<int64_t, std::string> chosen_;
};

// Sets every LSTM layer's forget-gate bias to `bias` (bias_ih's forget slice; bias_hh's is
// zeroed, so the sum the gate sees is `bias`). An initialisation: model.json does not keep it.
void init_forget_bias(StudentTaggerImpl& model, double bias);

// Builds the tagger a model.json describes (teacher or student); `where` is the file's path,
// named with the field in every error (a field of the wrong type included).
Tagger make_tagger(const nlohmann::json& description, const std::string& where = "");

}  // namespace kdx::models
