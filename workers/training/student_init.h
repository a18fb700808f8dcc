// A student as its run.json describes it: its own vocabulary and its first embeddings. A
// student reads the teacher's token ids (its logits are aligned to them) but, with
// `vocab: trimmed`, keeps embedding rows only for the wordpieces that occur in its training
// (and unlabelled) text: a RuBERT vocabulary has 119,547 rows, of which a NER corpus uses a
// small fraction, and the embedding would otherwise dominate the student's size.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "workers/data/encode.h"
#include "workers/models/student.h"
#include "workers/training/prepare.h"
#include "workers/training/run_spec.h"

namespace kdx::training {

// The teacher ids a trimmed student keeps, ascending: every id in `sets` plus the special
// tokens ([PAD], [UNK], [CLS], [SEP], [MASK] when present).
std::vector<int64_t> trimmed_vocabulary(const std::vector<const data::EncodedDataset*>& sets,
                                        const data::Vocab& vocab);

// The student's map from teacher id to embedding row: kept ids to their index in `kept`,
// every other id to the row of [UNK].
torch::Tensor vocabulary_map(const std::vector<int64_t>& kept, const data::Vocab& vocab);

// First embedding rows of width `emb` from the teacher's rows [N, H]: the rows themselves
// when emb == H, their coordinates on the top `emb` principal components when emb < H (the
// directions along which the teacher's embeddings differ most), and the rows padded with
// small noise when emb > H. The result keeps the teacher rows' overall scale.
torch::Tensor embedding_from_teacher(const torch::Tensor& teacher_rows, int emb);

// The untrained student of `spec`: architecture from its params, vocabulary trimmed to
// `p.train` (labelled and unlabelled examples) when params.vocab is "trimmed", embeddings
// from the teacher's (in `teacher_dir`) when params.init_embedding is set, and the word
// vectors of `p.words` when it has any (prepare_word_vectors). Teachers of a recurrent
// architecture are built here too (no teacher_dir).
std::shared_ptr<models::StudentTaggerImpl> make_student(const RunSpec& spec, const Prepared& p,
                                                        const std::string& teacher_dir);

}  // namespace kdx::training
