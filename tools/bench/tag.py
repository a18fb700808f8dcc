#!/usr/bin/python3
"""The Python PyTorch peer of `kdx-tag --batch`: tags every document of a file with a model
exported by `kdx-worker export`, doing what kdx-tag does, as a Python user would write it:
BERT WordPiece tokenization (the BertTokenizer algorithm), windows cut at sentence ends,
batches of similar length, the student in inference mode (nn.LSTM with packed sequences;
SRU/SRU++ as per-step PyTorch code), argmax, and decoding back to nested character-span
entities. Reads the export's own files (model.json, model.safetensors, vocab.txt,
tokenizer_config.json, types.json, encoding.json); needs only Debian's python3-torch.
With --onnx the model runs in ONNX Runtime instead (the graph tools/onnx-export builds from
the same export, its Scan form for SRU/SRU++), everything else unchanged; run that with the
Python of tools/onnx-env, which has numpy and onnxruntime and no PyTorch.

  tools/bench/tag.py EXPORT_DIR DOCS.jsonl [--out predictions.jsonl] [--threads N] [--onnx]

Prints one JSON line of statistics (documents, tokens, seconds, documents/s, tokens/s,
peak RSS); --out writes the entities as RuNNE lines {"id", "ners": [[start, last, TYPE]]}.
"""
import argparse
import json
import resource
import time
import unicodedata

try:
    import torch
    import torch.nn as nn
except ImportError:  # the --onnx side: the model classes below are then never built
    import types
    torch, nn = None, types.SimpleNamespace(Module=object)


# ---- the export ---------------------------------------------------------------------------

def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]) if raw else torch.zeros(0)
        out[name] = t.reshape(info["shape"]).float() if info["dtype"] in ("F16", "BF16") \
            else t.reshape(info["shape"])
    return out


# ---- tokenization (Hugging Face BertTokenizer's algorithm, with character offsets) --------

def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) in ("Zs", "Zl", "Zp")


def is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def is_punctuation(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or \
        unicodedata.category(c).startswith("P")


def is_cjk(c):
    o = ord(c)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or
            0x2A700 <= o <= 0x2B73F or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or
            0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F)


class Tokenizer:
    def __init__(self, export):
        with open(export + "/vocab.txt", encoding="utf-8") as f:
            self.tokens = [line.rstrip("\n") for line in f]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.lower, strip, self.cjk = False, None, True
        for name in ("tokenizer_config.json", "config.json"):
            try:
                with open(export + "/" + name, encoding="utf-8") as f:
                    j = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(j.get("do_lower_case"), bool):
                self.lower = j["do_lower_case"]
                strip = j.get("strip_accents") if isinstance(j.get("strip_accents"), bool) else None
                if isinstance(j.get("tokenize_chinese_chars"), bool):
                    self.cjk = j["tokenize_chinese_chars"]
                break
        self.strip = strip if strip is not None else self.lower
        self.unk = self.ids["[UNK]"]
        self.specials = [(t, self.ids[t]) for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
                         if t in self.ids]

    def normalise(self, c):
        if self.lower:
            low = c.lower()
            c = low if len(low) == 1 else c
        if not self.strip:
            return c
        return "".join(x for x in unicodedata.normalize("NFD", c)
                       if unicodedata.category(x) != "Mn")

    def basic(self, text, offset):
        raw, start = [], -1
        for i, c in enumerate(text):
            if c == "\0" or c == "\ufffd" or is_control(c):
                continue
            if is_whitespace(c):
                if start >= 0:
                    raw.append((start, i))
                start = -1
            elif self.cjk and is_cjk(c):
                if start >= 0:
                    raw.append((start, i))
                start = -1
                raw.append((i, i + 1))
            elif start < 0:
                start = i
        if start >= 0:
            raw.append((start, len(text)))
        words = []  # (normalised text, origin of each character)
        for b, e in raw:
            chars, origin = [], []
            for i in range(b, e):
                c = text[i]
                if c == "\0" or c == "\ufffd" or is_control(c):
                    continue
                for x in self.normalise(c):
                    chars.append(x)
                    origin.append(i + offset)
            cur, cur_o = [], []
            for x, o in zip(chars, origin):
                if is_punctuation(x):
                    if cur:
                        words.append(("".join(cur), cur_o))
                    cur, cur_o = [], []
                    words.append((x, [o]))
                else:
                    cur.append(x)
                    cur_o.append(o)
            if cur:
                words.append(("".join(cur), cur_o))
        return words

    def wordpiece(self, word, origin, out):
        if len(word) > 100:
            out.append((self.unk, origin[0], origin[-1] + 1))
            return
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.ids:
                    found = self.ids[sub]
                    break
                end -= 1
            if found is None:
                out.append((self.unk, origin[0], origin[-1] + 1))
                return
            pieces.append((found, origin[start], origin[end - 1] + 1))
            start = end
        out.extend(pieces)

    def tokenize(self, text):
        out, frm, i = [], 0, 0
        while i < len(text):
            if text[i] == "[":
                for t, tid in self.specials:
                    if text.startswith(t, i):
                        for w, o in self.basic(text[frm:i], frm):
                            self.wordpiece(w, o, out)
                        out.append((tid, i, i + len(t)))
                        frm = i + len(t)
                        i += len(t) - 1
                        break
            i += 1
        for w, o in self.basic(text[frm:], frm):
            self.wordpiece(w, o, out)
        return out  # (id, start, end)


def make_windows(tokens, text, vocab, max_tokens):
    room, n = max_tokens - 2, len(tokens)
    ends = [vocab[t[0]] in (".", "!", "?", "…") for t in tokens]
    for i in range(n - 1):
        if "\n" in text[tokens[i][2]:tokens[i + 1][1]]:
            ends[i] = True
    out, start = [], 0
    while start < n:
        limit = min(n, start + room)
        cut = limit
        if limit < n:
            for i in range(limit - 1, start - 1, -1):
                if ends[i]:
                    cut = i + 1
                    break
        out.append((start, cut - start))
        start = cut
    return out


# ---- the students --------------------------------------------------------------------------

class SruLayer(nn.Module):
    def __init__(self, inp, hidden, attn, scale_x):
        super().__init__()
        self.hidden, self.attn, self.scale_x = hidden, attn, scale_x
        self.blocks = 3 if inp == 2 * hidden else 4
        if attn:
            self.q = nn.Linear(inp, attn, bias=False)
            self.k = nn.Linear(attn, attn, bias=False)
            self.v_proj = nn.Linear(attn, attn, bias=False)
            self.o = nn.Linear(attn, 2 * hidden * self.blocks, bias=False)
            self.norm = nn.LayerNorm(attn)
            self.alpha = nn.Parameter(torch.zeros(1))
        else:
            self.W = nn.Linear(inp, 2 * hidden * self.blocks, bias=False)
        self.v = nn.Parameter(torch.zeros(2, 2, hidden))
        self.b = nn.Parameter(torch.zeros(2, 2, hidden))

    def forward(self, x, mask, lengths):
        B, T, _ = x.shape
        if self.attn:
            z = self.q(x)
            scores = z @ self.k(z).transpose(1, 2) / self.attn ** 0.5
            scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e4)
            U = self.o(self.norm(z + self.alpha * (torch.softmax(scores, -1) @ self.v_proj(z))))
        else:
            U = self.W(x)
        U = U.view(B, T, 2, self.hidden, self.blocks)
        t = torch.arange(T).unsqueeze(0)
        rev = torch.where(t < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - t, t)
        valid = mask.unsqueeze(2).float()
        outs = []
        for d in range(2):
            u = U[:, :, d]
            xh = u[..., 3] if self.blocks == 4 else x.view(B, T, 2, self.hidden)[:, :, d] * self.scale_x
            m = valid
            if d == 1:  # each row read backwards from its own last token
                u = u.gather(1, rev.view(B, T, 1, 1).expand_as(u))
                xh = xh.gather(1, rev.view(B, T, 1).expand_as(xh))
            v, b = self.v[d], self.b[d]
            c = torch.zeros(B, self.hidden)
            hs = []
            for ut, xt, mt in zip(u.unbind(1), xh.unbind(1), m.unbind(1)):
                f = torch.sigmoid(ut[..., 1] + v[0] * c + b[0])
                r = torch.sigmoid(ut[..., 2] + v[1] * c + b[1])
                c_new = f * c + (1 - f) * ut[..., 0]
                hs.append((r * c_new + (1 - r) * xt) * mt)
                c = mt * c_new + (1 - mt) * c
            h = torch.stack(hs, 1)
            if d == 1:
                h = h.gather(1, rev.view(B, T, 1).expand_as(h))
            outs.append(h)
        return torch.cat(outs, 2)


class Student(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.arch, self.hidden = d["arch"], d["hidden"]
        self.has_map = d.get("input_vocab", 0) > 0
        # Models of kdx 0.1: embeddings as wide as the teacher's, then projected.
        wide = d.get("teacher_hidden", 0)
        self.embedding = nn.Embedding(d["vocab_size"], wide or d["emb"])
        self.emb_proj = nn.Linear(wide, d["emb"]) if wide else None
        # residual (each layer after the first adds its input) needs the layers one by one;
        # without it one multi-layer nn.LSTM, as a user would write it.
        self.residual = self.arch == "lstm" and d.get("residual", False)
        if self.residual:
            self.lstm = nn.ModuleList(
                [nn.LSTM(d["emb"] if i == 0 else 2 * d["hidden"], d["hidden"], 1,
                         batch_first=True, bidirectional=True) for i in range(d["layers"])])
        elif self.arch == "lstm":
            self.lstm = nn.LSTM(d["emb"], d["hidden"], d["layers"], batch_first=True,
                                bidirectional=True)
        else:
            attn = (d.get("proj") or d["hidden"]) if self.arch == "srupp" else 0
            hb = d.get("highway_bias", 0.0)
            scale = (1 + 2 * torch.exp(torch.tensor(hb))).sqrt().item() if d.get("rescale") else 1.0
            self.sru = nn.ModuleList(
                [SruLayer(d["emb"] if i == 0 else 2 * d["hidden"], d["hidden"], attn, scale)
                 for i in range(d["layers"])])
        self.head = nn.Linear(2 * d["hidden"], d["columns"] * d["classes"])
        self.vocab_map = None

    def load(self, w):
        state = {}
        for k, t in w.items():
            if k == "vocab_map":
                self.vocab_map = t.long()
            elif k.startswith("lstm_fwd.") or k.startswith("lstm_bwd."):
                layer, name = k.split(".")[1], k.split(".")[2]  # weight_ih_l0 ...
                suffix = "_reverse" if k.startswith("lstm_bwd.") else ""
                if self.residual:
                    state[f"lstm.{layer}.{name}{suffix}"] = t
                else:
                    state["lstm." + name[:-1] + layer + suffix] = t
            else:
                state[k] = t
        self.load_state_dict(state, strict=True)

    def forward(self, ids, mask):
        lengths = mask.sum(1)
        x = self.embedding(self.vocab_map[ids] if self.vocab_map is not None else ids)
        if self.emb_proj is not None:
            x = self.emb_proj(x)
        if self.arch == "lstm":
            def run(lstm, x):
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                           enforce_sorted=False)
                return nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True,
                                                        total_length=ids.shape[1])[0]
            if self.residual:
                h = x
                for i, lstm in enumerate(self.lstm):
                    h = run(lstm, h) + h if i > 0 else run(lstm, h)
            else:
                h = run(self.lstm, x)
        else:
            h = x
            for layer in self.sru:
                h = layer(h, mask, lengths)
        return self.head(h)


# ---- tagging -------------------------------------------------------------------------------

def read_docs(path):
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                docs.append((str(j["id"]), j.get("sentences", j.get("text", ""))))
    return docs


def decode(tags, tokens, types, per_type, bilou=False):
    # As workers/data/tagging.cpp decode_tags: BILOU classes O=0 B=1 I=2 L=3 U=4.
    out = []
    cols = tags.shape[1]
    for col in range(cols):
        open_type, cur = -1, None
        for i, (_, s, e) in enumerate(tokens):
            tag = int(tags[i, col])
            if tag == 0:
                if open_type >= 0:
                    out.append(tuple(cur))
                open_type = -1
                continue
            typ = col if per_type else (tag - 1) // 2
            begin = (tag == 1 or (bilou and tag == 4)) if per_type else (tag - 1) % 2 == 0
            if begin or open_type != typ:
                if open_type >= 0:
                    out.append(tuple(cur))
                cur, open_type = [s, e, types[typ]], typ
            else:
                cur[1] = e
            if bilou and tag in (3, 4):
                out.append(tuple(cur))
                open_type = -1
        if open_type >= 0:
            out.append(tuple(cur))
    return sorted(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("export")
    p.add_argument("docs")
    p.add_argument("--out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--onnx", action="store_true", help="run the model in ONNX Runtime")
    p.add_argument("--decoding", choices=["greedy"],
                   help="decode greedily even where the export's runs used another decoding "
                        "(tag.py has greedy only; pass kdx-tag the same flag to compare)")
    a = p.parse_args()
    if a.onnx:
        return main_onnx(a)
    torch.set_num_threads(a.threads)

    with open(a.export + "/model.json") as f:
        desc = json.load(f)
    if desc.get("arch") not in ("lstm", "sru", "srupp"):
        raise SystemExit("tag.py: only students (lstm, sru, srupp), not " + str(desc.get("arch")))
    model = Student(desc)
    model.load(load_safetensors(a.export + "/model.safetensors"))
    model.eval()
    cols, classes = desc["columns"], desc["classes"]

    def run(rows, length, pad):
        ids = torch.full((len(rows), length), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r[2])] = torch.tensor(r[2])
            mask[i, :len(r[2])] = 1
        return model(ids, mask).view(len(rows), length, cols, classes).argmax(-1)

    with torch.inference_mode():
        tag_documents(a, desc, lambda n: torch.zeros(n, cols, dtype=torch.long), run,
                      {"torch": torch.__version__})


def tag_documents(a, desc, zeros, run, versions):
    """Everything but the model, the same for both runtimes: tokenization, windows, batches of
    similar length (run(rows, length, pad) -> best class per cell), decoding, the statistics."""
    tok = Tokenizer(a.export)
    with open(a.export + "/types.json") as f:
        types = json.load(f)
    with open(a.export + "/encoding.json") as f:
        enc = json.load(f)
    tagging, window = enc.get("tagging", "per_type_bio"), enc.get("window", 128)
    per_type, bilou = tagging in ("per_type_bio", "per_type_bilou"), tagging == "per_type_bilou"
    if enc.get("decoding", "greedy") != "greedy" and a.decoding != "greedy":
        raise SystemExit("tag.py: only greedy decoding (argmax), not " + str(enc["decoding"]) +
                         "; pass --decoding greedy here and to kdx-tag to compare")
    pad, cls, sep = tok.ids["[PAD]"], tok.ids["[CLS]"], tok.ids["[SEP]"]

    t0 = time.perf_counter()
    docs = read_docs(a.docs)
    doc_tokens, examples = [], []  # examples: (doc, first, ids)
    for di, (_, text) in enumerate(docs):
        tokens = tok.tokenize(text)
        doc_tokens.append(tokens)
        for first, count in make_windows(tokens, text, tok.tokens, window):
            examples.append((di, first, [cls] + [t[0] for t in tokens[first:first + count]] + [sep]))
    doc_tags = [zeros(len(t)) for t in doc_tokens]
    order = sorted(range(len(examples)), key=lambda e: len(examples[e][2]))
    for s in range(0, len(order), a.batch_size):
        rows = [examples[e] for e in order[s:s + a.batch_size]]
        best = run(rows, max(len(r[2]) for r in rows), pad)
        for i, (di, first, rid) in enumerate(rows):
            doc_tags[di][first:first + len(rid) - 2] = best[i, 1:len(rid) - 1]
    predictions = [(docs[d][0], decode(doc_tags[d], doc_tokens[d], types, per_type, bilou))
                   for d in range(len(docs))]
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            for doc_id, ents in predictions:
                f.write(json.dumps({"id": doc_id, "ners": [[s, e - 1, t] for s, e, t in ents]},
                                   ensure_ascii=False) + "\n")
    dt = time.perf_counter() - t0
    n_tokens = sum(len(t) for t in doc_tokens)
    print(json.dumps({"documents": len(docs), "tokens": n_tokens, "seconds": dt,
                      "documents_per_s": len(docs) / dt, "tokens_per_s": n_tokens / dt,
                      "entities": sum(len(e) for _, e in predictions), "threads": a.threads,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      **versions}))


def main_onnx(a):
    import importlib.machinery
    import importlib.util
    import os
    import tempfile

    import numpy as np
    import onnx
    import onnxruntime as ort

    here = os.path.dirname(os.path.abspath(__file__))
    loader = importlib.machinery.SourceFileLoader("kdx_onnx_export",
                                                  os.path.join(here, "..", "onnx-export"))
    spec = importlib.util.spec_from_loader("kdx_onnx_export", loader)
    exporter = importlib.util.module_from_spec(spec)
    loader.exec_module(exporter)
    graph, desc = exporter.build(a.export, "scan", 0)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as d:
        onnx.save(graph, os.path.join(d, "model.onnx"))
        sess = ort.InferenceSession(os.path.join(d, "model.onnx"), so,
                                    providers=["CPUExecutionProvider"])
    if any(i.name == "words" for i in sess.get_inputs()):
        raise SystemExit("tag.py --onnx: models with word vectors are not supported here")
    cols, classes = desc["columns"], desc["classes"]

    def run(rows, length, pad):
        ids = np.full((len(rows), length), pad, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r[2])] = r[2]
            mask[i, :len(r[2])] = 1
        logits = sess.run(["logits"], {"ids": ids, "mask": mask})[0]
        return logits.reshape(len(rows), length, cols, classes).argmax(-1)

    tag_documents(a, desc, lambda n: np.zeros((n, cols), dtype=np.int64), run,
                  {"onnxruntime": ort.__version__})


if __name__ == "__main__":
    main()
