#!/usr/bin/python3
"""Independent reference for the teacher's encoder: the BERT forward pass written with
torch.nn.functional from the architecture's definition (post-LN blocks, erf GELU, additive
-10000 attention mask), reading a Hugging Face checkpoint directory (config.json +
model.safetensors). Prints the last hidden states as JSON.

usage: hf_bert_reference.py CHECKPOINT_DIR '[[ids...], ...]'
"""
import json
import struct
import sys

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + n + begin: 8 + n + end])
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"]) if raw else torch.zeros(info["shape"])
        out[name] = t.float() if t.is_floating_point() else t
    return out


def main():
    ckpt, ids = sys.argv[1], torch.tensor(json.loads(sys.argv[2]))
    cfg = json.load(open(ckpt + "/config.json"))
    w = {k[5:] if k.startswith("bert.") else k: v for k, v in read_safetensors(ckpt + "/model.safetensors").items()}
    H, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    B, T = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (H,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = lambda name: w[f"encoder.layer.{i}.{name}"]
        def proj(name, t):
            return F.linear(t, p(name + ".weight"), p(name + ".bias"))
        q, k, v = (proj(f"attention.self.{n}", x).view(B, T, heads, H // heads).transpose(1, 2) for n in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / (H // heads) ** 0.5, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, H)
        a = F.layer_norm(proj("attention.output.dense", ctx) + x, (H,), p("attention.output.LayerNorm.weight"),
                         p("attention.output.LayerNorm.bias"), eps)
        h = F.gelu(proj("intermediate.dense", a))
        x = F.layer_norm(proj("output.dense", h) + a, (H,), p("output.LayerNorm.weight"), p("output.LayerNorm.bias"), eps)
    print(json.dumps(x.tolist()))


if __name__ == "__main__":
    main()
