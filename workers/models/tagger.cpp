#include "workers/models/tagger.h"

namespace kdx::models {

ParamCounts count_parameters(TaggerImpl& tagger) {
  ParamCounts n;
  for (auto& p : tagger.parameters()) {
    n.total += p.numel();
    if (p.requires_grad()) n.trainable += p.numel();
  }
  auto emb = tagger.word_embeddings();
  if (emb.defined()) n.embedding = emb.numel();
  for (auto& item : tagger.named_parameters())
    if (item.key() == "vectors.table") n.vectors = item.value().numel();
  return n;
}

}  // namespace kdx::models
