// A generated NER set small enough to learn in seconds, for tests of the training loop.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "workers/data/vocab_builder.h"
#include "workers/models/student.h"
#include "workers/training/tagging_task.h"
#include "workers/training/trainer.h"

namespace kdx::training {

// A generated NER set: "<name> <verb> in <city> ." with PER and LOC spans.
inline std::vector<data::Document> toy_docs(int n, uint64_t seed) {
  const char* names[] = {"Anna", "Boris", "Clara", "Dmitri", "Elena", "Fyodor", "Galina", "Igor"};
  const char* cities[] = {"Moscow", "Kazan", "Omsk", "Tver", "Perm", "Sochi"};
  const char* verbs[] = {"lives", "works", "sings", "waits", "reads"};
  std::mt19937_64 rng(seed);
  std::vector<data::Document> out;
  for (int i = 0; i < n; ++i) {
    std::string text;
    data::Document d;
    d.id = std::to_string(i);
    for (int s = 0; s < 3; ++s) {
      std::string name = names[rng() % 8], verb = verbs[rng() % 5], city = cities[rng() % 6];
      int p = static_cast<int>(text.size());
      text += name + " " + verb + " in ";
      int c = static_cast<int>(text.size());
      text += city + " . ";
      d.entities.push_back({p, p + static_cast<int>(name.size()), "PER"});
      d.entities.push_back({c, c + static_cast<int>(city.size()), "LOC"});
    }
    d.text = data::decode_utf8(text, "toy");
    out.push_back(d);
  }
  return out;
}

struct Toy {
  std::vector<data::Document> train_docs = toy_docs(60, 1), dev_docs = toy_docs(12, 2);
  data::Tokenizer tok{data::build_vocab(train_docs, 200, {}), {}};
  data::TagScheme scheme = data::make_scheme("per_type_bio", {"LOC", "PER"});
  data::EncodedDataset train = data::encode_dataset(train_docs, tok, scheme, 16);
  data::EncodedDataset dev = data::encode_dataset(dev_docs, tok, scheme, 16);
  models::Tagger student(const std::string& arch, double dropout = 0.1) {
    models::StudentConfig c;
    c.arch = arch;
    c.vocab_size = static_cast<int>(tok.vocab().size());
    c.emb = 16;
    c.hidden = 16;
    c.dropout = dropout;
    c.columns = 2;
    c.classes = 3;
    torch::manual_seed(5);
    return std::make_shared<models::StudentTaggerImpl>(c);
  }
  TrainData data() {
    return {&train, &dev, &dev_docs, nullptr, tok.vocab().pad(), "conll", {"LOC", "PER"}};
  }
};

// A few epochs of small batches, no checkpoints, no output.
inline TrainerOptions quick(int epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.batch_size = 8;
  o.lr = 0.01;
  o.warmup_steps = 5;
  o.checkpoint_every = 0;
  o.quiet = true;
  return o;
}

}  // namespace kdx::training
