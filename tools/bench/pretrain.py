#!/usr/bin/python3
"""The Python PyTorch peer of bench_pretrain: the same BERT masked-language model (post-LN
blocks, erf GELU, the decoder tied to the word embeddings, logits only at the masked
positions), batch, masking rate, loss and optimizer (AdamW, gradient clipping 1.0) as the
kdx pretrain stage, timed the same way. Prints JSON.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, H, heads, ffn):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attn_dense, self.attn_norm = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.inter, self.out, self.out_norm = nn.Linear(H, ffn), nn.Linear(ffn, H), nn.LayerNorm(H, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, additive):
        B, T, H = x.shape
        dh = H // self.heads
        split = lambda t: t.view(B, T, self.heads, dh).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        p = self.drop(torch.softmax(q @ k.transpose(-1, -2) / dh ** 0.5 + additive, -1))
        ctx = (p @ v).transpose(1, 2).reshape(B, T, H)
        a = self.attn_norm(self.drop(self.attn_dense(ctx)) + x)
        return self.out_norm(self.drop(self.out(F.gelu(self.inter(a)))) + a)


class BertMlm(nn.Module):
    def __init__(self, V, H, layers, heads, ffn, max_pos=512):
        super().__init__()
        self.word, self.pos, self.types = nn.Embedding(V, H), nn.Embedding(max_pos, H), nn.Embedding(2, H)
        self.emb_norm, self.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        self.layers = nn.ModuleList([Layer(H, heads, ffn) for _ in range(layers)])
        self.dense, self.norm = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(V))

    def forward(self, ids, mask, positions):
        T = ids.shape[1]
        x = self.word(ids) + self.pos(torch.arange(T)) + self.types.weight[0]
        x = self.drop(self.emb_norm(x))
        additive = (1.0 - mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, additive)
        picked = x.reshape(-1, x.shape[-1]).index_select(0, positions)
        return F.linear(self.norm(F.gelu(self.dense(picked))), self.word.weight, self.bias)


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("vocab", 16000), ("hidden", 256), ("layers", 4), ("heads", 4), ("ffn", 1024),
                          ("batch", 32), ("len", 128), ("steps", 6), ("threads", 1)):
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = BertMlm(a.vocab, a.hidden, a.layers, a.heads, a.ffn)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(5, a.vocab, (a.batch, a.len))
    mask = torch.ones(a.batch, a.len, dtype=torch.long)
    n_targets = round(0.15 * a.batch * a.len)
    positions = torch.randperm(a.batch * a.len)[:n_targets]
    targets = ids.reshape(-1)[positions]

    def step():
        loss = F.cross_entropy(m(ids, mask, positions), targets, reduction="sum") / n_targets
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"seconds_per_step": dt, "tokens_per_s": a.batch * a.len / dt}))


if __name__ == "__main__":
    main()
