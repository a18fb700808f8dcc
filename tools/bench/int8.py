#!/usr/bin/python3
"""Does int8 dynamic quantization make the students' LSTM faster on this CPU? Python
PyTorch's quantize_dynamic (the only int8 path this LibTorch offers: QNNPACK or oneDNN
engines, no FBGEMM) against the same fp32 nn.LSTM + head, batch 1 x 128, 1 thread, at the
three benchmark sizes. Prints JSON: ms per call for each, the speed-up and the largest
output difference. (The README's statement on `--int8` comes from this.)

  GLOG_minloglevel=2 tools/bench/int8.py
"""
import json
import time

import torch
import torch.nn as nn

torch.set_num_threads(1)
res = {}
for engine in torch.backends.quantized.supported_engines:
    if engine == 'none': continue
    torch.backends.quantized.engine = engine
    for emb, hid in ((64,128),(128,256),(300,512)):
        torch.manual_seed(1)
        lstm = nn.LSTM(emb, hid, bidirectional=True, batch_first=True); head = nn.Linear(2*hid, 87)
        x = torch.randn(1,128,emb)
        def f(l, h): return h(l(x)[0])
        try:
            ql = torch.ao.quantization.quantize_dynamic(lstm, {nn.LSTM}, dtype=torch.qint8)
            qh = torch.ao.quantization.quantize_dynamic(nn.Sequential(head), {nn.Linear}, dtype=torch.qint8)
        except Exception as e:
            res[f"{engine}"] = repr(e)[:200]; break
        with torch.inference_mode():
            def t(fn):
                for _ in range(3): fn()
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < 1.0: fn(); n += 1
                return (time.perf_counter()-t0)/n*1e3
            a = t(lambda: f(lstm, head)); b = t(lambda: f(ql, qh))
            err = (f(lstm, head) - f(ql, qh)).abs().max().item()
        res[f"{engine} ({emb},{hid})"] = {"fp32_ms": round(a,2), "int8_ms": round(b,2), "speedup": round(a/b,2), "max_abs_diff": round(err,4)}
print(json.dumps(res, indent=1))
