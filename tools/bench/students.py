#!/usr/bin/python3
"""The Python PyTorch peer of bench_students: the same student architectures, sizes and
batch, trained with the same loss and optimizer, timed the same way; with --infer, the
latency of one forward pass at batch x len in inference mode. Prints JSON.

SRU/SRU++ here are written as a PyTorch user would without a custom kernel: the
elementwise recurrence as a per-step loop over time (unbind once, as recommended); with
--impl sru, they are the reference `sru` package's SRU / SRUpp modules instead (its CPU
kernel for inference, its own autograd path for training). --compile wraps the model in
torch.compile (PyTorch 2.x). Runs under any PyTorch: Debian's 1.13 or PyPI's 2.x
(tools/bench/peers-env).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SruLayer(nn.Module):
    def __init__(self, inp, hidden, attn):
        super().__init__()
        self.hidden, self.attn, self.proj_hw = hidden, attn, inp != hidden
        k = 4 if self.proj_hw else 3
        if attn:
            self.q = nn.Linear(inp, attn, bias=False)
            self.k = nn.Linear(attn, attn, bias=False)
            self.v_proj = nn.Linear(attn, attn, bias=False)
            self.o = nn.Linear(attn, 2 * hidden * k, bias=False)
            self.norm = nn.LayerNorm(attn)
            self.alpha = nn.Parameter(torch.ones(1))
        else:
            self.W = nn.Linear(inp, 2 * hidden * k, bias=False)
        self.v = nn.Parameter(torch.zeros(2, 2, hidden))
        self.b = nn.Parameter(torch.zeros(2, 2, hidden))

    def recurrence(self, u, xh, v, b, reverse):
        T = u.shape[0]
        c = torch.zeros(u.shape[1], self.hidden)
        us, xs, hs = u.unbind(0), xh.unbind(0), [None] * T
        for step in range(T):
            t = T - 1 - step if reverse else step
            f = torch.sigmoid(us[t][..., 1] + v[0] * c + b[0])
            r = torch.sigmoid(us[t][..., 2] + v[1] * c + b[1])
            c = f * c + (1 - f) * us[t][..., 0]
            hs[t] = r * c + (1 - r) * xs[t]
        return torch.stack(hs, 0)

    def forward(self, x):
        B, T, _ = x.shape
        k = 4 if self.proj_hw else 3
        if self.attn:
            q = self.q(x)
            a = torch.softmax(q @ self.k(q).transpose(1, 2) / self.attn ** 0.5, -1) @ self.v_proj(q)
            U = self.o(self.norm(q + self.alpha * a))
        else:
            U = self.W(x)
        U = U.view(B, T, 2, self.hidden, k)
        outs = []
        for d in range(2):
            u = U[:, :, d].transpose(0, 1)
            xh = u[..., 3] if self.proj_hw else x.view(B, T, 2, self.hidden)[:, :, d].transpose(0, 1)
            outs.append(self.recurrence(u[..., :3], xh, self.v[d], self.b[d], d == 1))
        return torch.cat(outs, 2).transpose(0, 1)


class ReferenceSru(nn.Module):
    """The reference package's bidirectional SRU / SRU++ (time-major), batch-first around it."""

    def __init__(self, arch, emb, hidden, layers):
        super().__init__()
        import sru
        if arch == "srupp":
            self.rnn = sru.SRUpp(emb, hidden, hidden, num_layers=layers, bidirectional=True)
        else:
            self.rnn = sru.SRU(emb, hidden, num_layers=layers, bidirectional=True)

    def forward(self, x):
        return self.rnn(x.transpose(0, 1).contiguous())[0].transpose(0, 1)


class Student(nn.Module):
    def __init__(self, arch, vocab, emb, hidden, layers, outputs, impl="plain"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.arch = arch
        self.ref = None
        if arch == "lstm":
            self.lstm = nn.LSTM(emb, hidden, layers, bidirectional=True, batch_first=True)
        elif impl == "sru":
            self.ref = ReferenceSru(arch, emb, hidden, layers)
        else:
            attn = hidden if arch == "srupp" else 0
            self.sru = nn.ModuleList([SruLayer(emb if i == 0 else 2 * hidden, hidden, attn) for i in range(layers)])
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(2 * hidden, outputs)

    def forward(self, ids):
        x = self.dropout(self.embedding(ids))
        if self.arch == "lstm":
            h = self.lstm(x)[0]
        elif self.ref is not None:
            h = self.ref(x)
        else:
            h = x
            for layer in self.sru:
                h = layer(h)
        return self.head(self.dropout(h))


def infer(m, a):
    m.eval()
    ids = torch.randint(5, a.vocab, (a.batch, a.len))
    with torch.inference_mode():
        for _ in range(3):  # warm-up
            m(ids)
        calls, t0 = 0, time.perf_counter()
        while True:
            m(ids)
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= a.min_time:
                break
    print(json.dumps({"arch": a.arch, "emb": a.emb, "hidden": a.hidden, "batch": a.batch,
                      "ms_per_call": dt / calls * 1e3, "calls": calls, "impl": a.impl,
                      "compile": a.compile,
                      "params": sum(p.numel() for p in m.parameters()), "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True)
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--emb", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--columns", type=int, default=29)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--infer", action="store_true", help="time inference, not training")
    p.add_argument("--min-time", type=float, default=1.0, help="--infer: seconds to time")
    p.add_argument("--impl", choices=["plain", "sru"], default="plain",
                   help="SRU/SRU++: per-step PyTorch code, or the reference sru package")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (2.x)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = Student(a.arch, a.vocab, a.emb, a.hidden, a.layers, a.columns * 3, a.impl)
    if a.compile:
        m = torch.compile(m)
    if a.infer:
        infer(m, a)
        return
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
    ids = torch.randint(5, a.vocab, (a.batch, a.len))
    tags = torch.randint(0, 3, (a.batch * a.len * a.columns,))

    def step():
        logits = m(ids)
        loss = F.cross_entropy(logits.reshape(-1, 3), tags)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    step()  # warm-up (and, with --compile, compilation)
    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"arch": a.arch, "seconds_per_step": dt, "tokens_per_s": a.batch * a.len / dt,
                      "impl": a.impl, "compile": a.compile,
                      "params": sum(p.numel() for p in m.parameters()), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
