#!/usr/bin/env python3
"""The Python PyTorch peer of tools/gpu-check's training phase: the same model shapes,
batch size, window, optimizer (AdamW, gradient clipping 1.0), loss (cross-entropy over the
per-type BIO columns) and precision (bf16 autocast on a GPU) as the kdx-worker runs, on the
same device; trained for kdx's steps per epoch after a few warm-up steps. One JSON line per
model on stdout (and --out), as each finishes, so a run cut short keeps what it measured.

Shapes come from the run.json files tools/gpu-check wrote (RUNS/teacher, RUNS/student-ARCH)
and, where kdx-worker finished, from its model.json / vocab.txt / result.json.

  bert       BERT encoder + linear tagger, attention written out as kdx's is
             (matmul, softmax, matmul), erf GELU, post-LN
  bert_sdpa  the same with F.scaled_dot_product_attention (what a PyTorch user would use)
  lstm       nn.LSTM(bidirectional=True) per layer stack (cuDNN on a GPU)
  sru/srupp  SRU / SRU++ with the elementwise recurrence as a per-step loop in fp32 (no
             custom kernel), projections under autocast

Counting: tokens/s here is steps x batch x window over the timed steps (full windows); kdx
counts each window's real tokens (its last window per document is shorter), over its last
epoch.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class BertLayer(nn.Module):
    def __init__(self, H, heads, ffn, dropout, sdpa):
        super().__init__()
        self.heads, self.sdpa, self.p = heads, sdpa, dropout
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attn_dense, self.attn_norm = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.inter, self.out = nn.Linear(H, ffn), nn.Linear(ffn, H)
        self.out_norm = nn.LayerNorm(H, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, additive):
        B, T, H = x.shape
        dh = H // self.heads

        def split(t):
            return t.view(B, T, self.heads, dh).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        if self.sdpa:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=additive.to(q.dtype),
                                                 dropout_p=self.p if self.training else 0.0)
        else:
            p = self.drop(torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + additive, -1))
            ctx = p @ v
        ctx = ctx.transpose(1, 2).reshape(B, T, H)
        a = self.attn_norm(self.drop(self.attn_dense(ctx)) + x)
        return self.out_norm(self.drop(self.out(F.gelu(self.inter(a)))) + a)


class BertTagger(nn.Module):
    def __init__(self, V, H, layers, heads, ffn, outputs, dropout, sdpa, max_pos=512):
        super().__init__()
        self.word, self.pos, self.types = nn.Embedding(V, H), nn.Embedding(max_pos, H), nn.Embedding(2, H)
        self.emb_norm, self.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(dropout)
        self.layers = nn.ModuleList([BertLayer(H, heads, ffn, dropout, sdpa) for _ in range(layers)])
        self.classifier = nn.Linear(H, outputs)

    def forward(self, ids, mask):
        T = ids.shape[1]
        x = self.word(ids) + self.pos(torch.arange(T, device=ids.device)) + self.types.weight[0]
        x = self.drop(self.emb_norm(x))
        additive = (1.0 - mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, additive)
        return self.classifier(self.drop(x))


class SruLayer(nn.Module):
    def __init__(self, inp, hidden, attn):
        super().__init__()
        self.hidden, self.attn, self.proj_hw = hidden, attn, inp != 2 * hidden
        self.k = 4 if self.proj_hw else 3
        if attn:
            self.q = nn.Linear(inp, attn, bias=False)
            self.key = nn.Linear(attn, attn, bias=False)
            self.v_proj = nn.Linear(attn, attn, bias=False)
            self.o = nn.Linear(attn, 2 * hidden * self.k, bias=False)
            self.norm = nn.LayerNorm(attn)
            self.alpha = nn.Parameter(torch.zeros(1))
        else:
            self.W = nn.Linear(inp, 2 * hidden * self.k, bias=False)
        self.v = nn.Parameter(torch.empty(2, 2, hidden).uniform_(-1.2, 1.2))
        self.b = nn.Parameter(torch.zeros(2, 2, hidden))

    def recurrence(self, u, xh, v, b, reverse):
        T = u.shape[0]
        c = torch.zeros(u.shape[1], self.hidden, device=u.device, dtype=torch.float32)
        us, xs, hs = u.unbind(0), xh.unbind(0), [None] * T
        for step in range(T):
            t = T - 1 - step if reverse else step
            f = torch.sigmoid(us[t][..., 1] + v[0] * c + b[0])
            r = torch.sigmoid(us[t][..., 2] + v[1] * c + b[1])
            c = f * c + (1 - f) * us[t][..., 0]
            hs[t] = r * c + (1 - r) * xs[t]
        return torch.stack(hs, 0)

    def forward(self, x, mask):
        B, T, _ = x.shape
        if self.attn:
            z = self.q(x)
            scores = z @ self.key(z).transpose(1, 2) / math.sqrt(self.attn)
            scores = scores.masked_fill(mask[:, None, :] == 0, -1e4)
            a = torch.softmax(scores, -1) @ self.v_proj(z)
            U = self.o(self.norm(z + self.alpha * a))
        else:
            U = self.W(x)
        U = U.float().view(B, T, 2, self.hidden, self.k)  # the recurrence in fp32, as kdx's
        xf = x.float()
        outs = []
        for d in range(2):
            u = U[:, :, d].transpose(0, 1)
            xh = u[..., 3] if self.proj_hw else xf.view(B, T, 2, self.hidden)[:, :, d].transpose(0, 1)
            outs.append(self.recurrence(u[..., :3], xh, self.v[d], self.b[d], d == 1))
        return torch.cat(outs, 2).transpose(0, 1)


class Student(nn.Module):
    def __init__(self, arch, vocab, emb, hidden, layers, proj, outputs, dropout):
        super().__init__()
        self.arch = arch
        self.embedding = nn.Embedding(vocab, emb)
        if arch == "lstm":
            self.lstm = nn.LSTM(emb, hidden, layers, bidirectional=True, batch_first=True)
        else:
            attn = (proj if proj > 0 else hidden) if arch == "srupp" else 0
            self.sru = nn.ModuleList([SruLayer(emb if i == 0 else 2 * hidden, hidden, attn)
                                      for i in range(layers)])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, outputs)

    def forward(self, ids, mask):
        x = self.drop(self.embedding(ids))
        if self.arch == "lstm":
            h = self.lstm(x)[0]
        else:
            h = x
            for i, layer in enumerate(self.sru):
                h = layer(h, mask)
                if i + 1 < len(self.sru):
                    h = self.drop(h)
        return self.head(self.drop(h))


def shapes(runs, model):
    """(params, vocab, columns, classes, steps per epoch) for a model from kdx's files."""
    run = os.path.join(runs, "teacher" if model.startswith("bert") else "student-" + model)
    spec = load(os.path.join(run, "run.json"))
    if not spec:
        return None
    p = spec["params"]
    teacher = os.path.join(runs, "teacher")
    vocab = None
    try:
        with open(os.path.join(teacher, "vocab.txt"), encoding="utf-8") as f:
            vocab = sum(1 for _ in f)
    except OSError:
        pass
    desc = load(os.path.join(run, "model.json")) or load(os.path.join(teacher, "model.json")) or {}
    if not model.startswith("bert") and isinstance(desc.get("vocab_size"), int):
        vocab = desc["vocab_size"]  # a trimmed student vocabulary
    if vocab is None:
        vocab = p.get("vocab_size") or (load(os.path.join(teacher, "run.json")) or {}).get(
            "params", {}).get("vocab_size", 30000)
    columns, classes = desc.get("columns"), desc.get("classes")
    if not columns:
        ners = os.path.join(os.path.dirname(spec["dataset"]["train"][0]), "ners.txt")
        try:
            columns = sum(1 for l in open(ners, encoding="utf-8") if l.strip())
        except OSError:
            columns = 29
        classes = 3
    result = load(os.path.join(run, "result.json")) or {}
    m = result.get("metrics", {})
    per_epoch = None
    if m.get("steps") and m.get("epochs"):
        per_epoch = max(1, int(m["steps"]) // max(1, int(m["epochs"])))
    return p, vocab, columns, classes or 3, per_epoch


def measure(model, a, device, use_amp):
    got = shapes(a.runs, model)
    if not got:
        return {"model": model, "status": "skipped", "note": "no run.json"}
    p, vocab, columns, classes, per_epoch = got
    B, T = p["batch_size"], p["window"]
    steps = a.steps or per_epoch or 20
    torch.manual_seed(1)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    if model.startswith("bert"):
        m = BertTagger(vocab, p["hidden"], p["layers"], p["heads"], p["ffn"], columns * classes,
                       p.get("dropout", 0.1), model == "bert_sdpa", max(512, T))
    else:
        m = Student(model, vocab, p["emb"], p["hidden"], p["layers"], p.get("proj", 0),
                    columns * classes, p.get("dropout", 0.1))
    m.to(device).train()
    opt = torch.optim.AdamW(m.parameters(), lr=p["lr"], weight_decay=p.get("weight_decay", 0.01))
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randint(5, vocab, (B, T), generator=gen),
                torch.randint(0, classes, (B * T * columns,), generator=gen)) for _ in range(4)]
    batches = [(i.to(device), t.to(device)) for i, t in batches]
    mask = torch.ones(B, T, dtype=torch.long, device=device)

    def step(k):
        ids, tags = batches[k % len(batches)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = m(ids, mask)
        loss = F.cross_entropy(logits.float().reshape(-1, classes), tags)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), p.get("grad_clip", 1.0))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    for k in range(a.warmup):
        step(k)
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(steps):
        loss = step(k)
    sync()
    dt = time.perf_counter() - t0
    out = {"model": model, "status": "ok", "device": str(device), "amp": "bf16" if use_amp else "none",
           "batch": B, "window": T, "vocab": vocab, "outputs": columns * classes,
           "warmup_steps": a.warmup, "warmup_s": round(warm, 3), "steps": steps,
           "seconds": round(dt, 3), "tokens_per_s": B * T * steps / dt,
           "loss": float(loss), "params": sum(x.numel() for x in m.parameters()),
           "torch": torch.__version__}
    if cuda:
        out["peak_device_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_device_memory_mb"] = 0.0  # as kdx reports on a CPU
        out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del m, opt, batches
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="the directory of the kdx runs")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", default="auto", choices=("auto", "bf16", "none"))
    ap.add_argument("--models", default="bert,lstm,sru,srupp,bert_sdpa")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: kdx's per epoch)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--budget", type=float, default=0, help="start no model after this many s")
    ap.add_argument("--out", help="append the JSON lines here too")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    use_amp = a.amp == "bf16" or (a.amp == "auto" and device.type == "cuda")
    started = time.perf_counter()
    for model in [x for x in a.models.split(",") if x]:
        if a.budget and time.perf_counter() - started > a.budget:
            r = {"model": model, "status": "skipped", "note": "out of time"}
        else:
            try:
                r = measure(model, a, device, use_amp)
            except Exception as e:  # one model's failure (e.g. out of memory) is reported
                r = {"model": model, "status": "error", "error": f"{type(e).__name__}: {e}"[:500]}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        line = json.dumps(r)
        print(line, flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
