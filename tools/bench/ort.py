#!/usr/bin/env python3
"""The ONNX Runtime peer of bench_students: a student exported by kdx (model.json +
model.safetensors), turned into an ONNX graph by tools/onnx-export (the same code a user
runs), and timed in ONNX Runtime at batch x len, as a user deploying it would run it
(CPUExecutionProvider, all graph optimizations, intra-op threads = --threads, one
inter-op thread). Prints JSON. Run with the Python of tools/onnx-env.

  tools/bench/ort.py EXPORT_DIR --batch 1 --len 128 --threads 1 [--sru scan|unrolled]
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))


def onnx_export_module():
    path = os.path.join(HERE, "..", "onnx-export")
    loader = importlib.machinery.SourceFileLoader("kdx_onnx_export", path)
    spec = importlib.util.spec_from_loader("kdx_onnx_export", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def main():
    p = argparse.ArgumentParser()
    p.add_argument("export")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sru", choices=["scan", "unrolled"], default="scan")
    p.add_argument("--min-time", type=float, default=1.0)
    a = p.parse_args()
    model, cfg = onnx_export_module().build(a.export, a.sru, a.len)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        onnx.save(model, path)
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    vocab = cfg.get("input_vocab") or cfg["vocab_size"]
    rng = np.random.default_rng(1)
    feeds = {"ids": rng.integers(5, vocab, (a.batch, a.len), dtype=np.int64),
             "mask": np.ones((a.batch, a.len), np.int64)}
    if any(i.name == "words" for i in sess.get_inputs()):
        feeds["words"] = np.zeros((a.batch, a.len), np.int64)
    for _ in range(3):  # warm-up
        sess.run(["logits"], feeds)
    calls, t0 = 0, time.perf_counter()
    while True:
        sess.run(["logits"], feeds)
        calls += 1
        dt = time.perf_counter() - t0
        if dt >= a.min_time:
            break
    print(json.dumps({"arch": cfg["arch"], "batch": a.batch, "len": a.len, "sru": a.sru,
                      "ms_per_call": dt / calls * 1e3, "calls": calls, "threads": a.threads,
                      "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
