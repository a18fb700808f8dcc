#!/usr/bin/env python3
"""slovnet's news NER (natasha's model: PER, LOC, ORG over navec vectors) on RuNNE test, as an
anchor beside kdx-tag: documents/s, and exact-span F1 on the three types it knows. RuNNE's
gold is mapped to them: PERSON -> PER, ORGANIZATION -> ORG, and LOCATION, CITY, COUNTRY,
STATE_OR_PROVINCE, DISTRICT -> LOC (news LOC covers all five); every other gold type is
dropped. `--kdx PRED.jsonl` scores kdx-tag's predictions (RuNNE lines) the same way.
Prints JSON. Run with the Python of tools/onnx-env and PYTHONPATH from tools/bench/peers-env.

  tools/bench/slovnet_ner.py TEST.jsonl TEST_WITH_ANSWERS.jsonl [--kdx PRED.jsonl]
"""
import argparse
import json
import os
import time

MAP = {"PERSON": "PER", "ORGANIZATION": "ORG", "LOCATION": "LOC", "CITY": "LOC",
       "COUNTRY": "LOC", "STATE_OR_PROVINCE": "LOC", "DISTRICT": "LOC"}


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gold_spans(answers):
    out = {}
    for j in answers:
        out[str(j["id"])] = {(s, e + 1, MAP[t]) for s, e, t in j["ners"] if t in MAP}
    return out


def score(pred, gold):
    res = {}
    for typ in ("PER", "LOC", "ORG", "all"):
        tp = fp = fn = 0
        for doc, g in gold.items():
            gs = {x for x in g if typ == "all" or x[2] == typ}
            ps = {x for x in pred.get(doc, set()) if typ == "all" or x[2] == typ}
            tp += len(gs & ps)
            fp += len(ps - gs)
            fn += len(gs - ps)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        res[typ] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                    "gold": tp + fn}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("answers")
    ap.add_argument("--kdx", help="kdx-tag --batch predictions to score the same way")
    a = ap.parse_args()
    import importlib.util
    from navec import Navec
    from slovnet import NER
    # natasha's files only: importing natasha would pull pymorphy2, which the NER does not use.
    data = os.path.join(importlib.util.find_spec("natasha").submodule_search_locations[0], "data")
    navec = Navec.load(os.path.join(data, "emb", "navec_news_v1_1B_250K_300d_100q.tar"))
    ner = NER.load(os.path.join(data, "model", "slovnet_ner_news_v1.tar")).navec(navec)
    docs = read_jsonl(a.test)
    t0 = time.perf_counter()
    pred = {}
    for j, markup in zip(docs, ner.map([j["sentences"] for j in docs])):
        pred[str(j["id"])] = {(s.start, s.stop, s.type) for s in markup.spans}
    dt = time.perf_counter() - t0
    gold = gold_spans(read_jsonl(a.answers))
    out = {"documents": len(docs), "seconds": dt, "documents_per_s": len(docs) / dt,
           "slovnet": score(pred, gold)}
    if a.kdx:
        kdx = {}
        for j in read_jsonl(a.kdx):
            kdx[str(j["id"])] = {(s, e + 1, MAP[t]) for s, e, t in j["ners"] if t in MAP}
        out["kdx"] = score(kdx, gold)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
