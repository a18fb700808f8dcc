#!/usr/bin/env python3
"""Helpers of tools/gpu-check on the GPU node: the bundle's CMake arguments, the run.json
files, the one result file (gpu-check.json, rewritten after every phase) and the summary.

Standard library only, except `probe` (imports torch). Run with the node's python.
"""
import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys

# The shapes and schedules of the training phase: "cuda" is the check proper (a BERT-base
# teacher on the RuNNE slice, students of the paper's size), "cpu" the rehearsal on a machine
# without a GPU (tiny models, a few steps: every path runs, no number means anything).
# Two or more epochs: kdx-worker's train_tokens_per_s is the last epoch's (the first one
# carries the warm-up: CUDA context, cuBLAS handles, the caching allocator filling).
PLANS = {
    "cuda": {
        "data": {"window": 128, "batch_size": 32, "max_train_docs": 0, "max_test_docs": 50,
                 "tagging": "per_type_bio"},
        "teacher": {"arch": "bert", "layers": 12, "hidden": 768, "heads": 12, "ffn": 3072,
                    "vocab_size": 30000, "lowercase": False, "dropout": 0.1},
        "teacher_train": {"epochs": 3, "lr": 5e-5, "warmup_steps": 10},
        "student": {"hidden": 256, "emb": 128, "layers": 2, "proj": 0, "dropout": 0.1},
        "student_train": {"epochs": 3, "lr": 2e-3, "warmup_steps": 5},
        "amp": "bf16",
    },
    "cpu": {
        "data": {"window": 64, "batch_size": 8, "max_train_docs": 20, "max_test_docs": 3,
                 "tagging": "per_type_bio"},
        "teacher": {"arch": "bert", "layers": 2, "hidden": 64, "heads": 2, "ffn": 128,
                    "vocab_size": 4000, "lowercase": False, "dropout": 0.1},
        "teacher_train": {"epochs": 2, "lr": 1e-3, "warmup_steps": 2},
        "student": {"hidden": 32, "emb": 32, "layers": 1, "proj": 0, "dropout": 0.1},
        "student_train": {"epochs": 2, "lr": 2e-3, "warmup_steps": 2},
        "amp": "none",
    },
}
ARCHS = ("lstm", "sru", "srupp")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# --- probe -------------------------------------------------------------------------------

def cmd_probe(a):
    info = {"python": sys.version.split()[0], "executable": sys.executable}
    import torch  # noqa: the node's PyTorch

    info["torch"] = torch.__version__
    info["torch_dir"] = os.path.dirname(torch.__file__)
    info["cmake_prefix_path"] = torch.utils.cmake_prefix_path
    info["cuda_build"] = torch.version.cuda
    info["cuda_available"] = bool(torch.cuda.is_available())
    if info["cuda_available"]:
        info["device_count"] = torch.cuda.device_count()
        info["device"] = torch.cuda.get_device_name(0)
        cap = torch.cuda.get_device_capability(0)
        info["capability"] = f"{cap[0]}.{cap[1]}"
        info["bf16"] = bool(torch.cuda.is_bf16_supported())
        info["memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    print(json.dumps(info))


# --- the bundle --------------------------------------------------------------------------

def manifest_of(bundle):
    m = load(os.path.join(bundle, "manifest.json"))
    if not m or m.get("kdx_gpu_check_bundle") != 1:
        sys.exit(f"gpu-check: error: {bundle}/manifest.json is missing or not a gpu-check "
                 "bundle: run `tools/gpu-check --prepare` on the build machine and bring "
                 "gpu-check-bundle/ along")
    return m


def cmd_fix_links(a):
    """Re-creates the bundle's symbolic links if the transfer turned them into nothing."""
    m = manifest_of(a.bundle)
    made = 0
    for rel, target in m["links"].items():
        p = os.path.join(a.bundle, rel)
        if os.path.islink(p) and os.readlink(p) == target:
            continue
        if os.path.isfile(p) and not os.path.islink(p):
            continue  # a copy in place of the link works as well
        if os.path.lexists(p):
            os.remove(p)
        os.symlink(target, p)
        made += 1
    missing = [rel for rel in m["links"] if not os.path.exists(os.path.join(a.bundle, rel))]
    if missing:
        sys.exit("gpu-check: error: the bundle is incomplete, these point nowhere: " +
                 ", ".join(missing))
    print(made)


def cmd_cmake_args(a):
    m = manifest_of(a.bundle)
    root = os.path.join(os.path.abspath(a.bundle), m.get("prefix", "."))
    root = os.path.normpath(root)
    for name, rel in m["cmake_cache"].items():
        print(f"-D{name}={os.path.join(root, rel)}")


def glibc_version():
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    except (ValueError, OSError, IndexError, AttributeError):
        return None


def libstdcxx_versions():
    for cxx in ("c++", "g++"):
        try:
            path = subprocess.run([cxx, "-print-file-name=libstdc++.so.6"], text=True,
                                  capture_output=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if os.path.isabs(path) and os.path.exists(path):
            data = open(os.path.realpath(path), "rb").read()
            return path, sorted(set(re.findall(rb"GLIBCXX_3\.4\.[0-9]+", data)),
                                key=lambda v: int(v.rsplit(b".", 1)[1]))
    return None, []


def cmd_check_host(a):
    """Can this system run what the bundle holds? (glibc, libstdc++ symbol versions)."""
    m = manifest_of(a.bundle)
    need = m.get("needs_symbol_versions", {})
    out = {"glibc": glibc_version(), "problems": []}
    g = need.get("GLIBC")
    if g and out["glibc"]:
        have = tuple(int(x) for x in out["glibc"].split("."))
        want = tuple(int(x) for x in g.split("_")[1].split("."))
        if have < want:
            out["problems"].append(f"the bundle's libraries need {g}, this system has glibc "
                                   f"{out['glibc']}")
    path, versions = libstdcxx_versions()
    out["libstdcxx"] = path
    if versions:
        out["libstdcxx_newest"] = versions[-1].decode()
        want = need.get("GLIBCXX")
        if want and want.encode() not in versions:
            out["problems"].append(f"the bundle's libraries need {want}, {path} has up to "
                                   f"{versions[-1].decode()}")
    print(json.dumps(out))


# --- run.json ----------------------------------------------------------------------------

def cmd_runspec(a):
    plan = PLANS[a.mode]
    d = os.path.abspath(a.data)
    common = {"seed": 1, "weight_decay": 0.01, "grad_clip": 1.0, "patience": 0,
              "checkpoint_every": 0, "threads": a.threads, "ranks": 1, "device": a.mode,
              "amp": plan["amp"]}
    common.update(plan["data"])
    if a.stage == "teacher":
        params = dict(common, **plan["teacher"], **plan["teacher_train"])
    elif a.stage == "logits":
        params = {"precision": "fp16", "seed": 1, "threads": a.threads, "device": a.mode,
                  "amp": plan["amp"]}
    else:
        kd = 0.0 if a.no_kd else 1.0
        params = dict(common, **plan["student"], **plan["student_train"], arch=a.arch,
                      init_embedding=False,
                      loss={"ce_weight": 1.0, "kd_weight": kd, "kd_loss": "mse",
                            "temperature": 1.0})
    run_dir = os.path.abspath(a.run_dir)
    spec = {
        "kdx_run_version": 1,
        "id": os.path.basename(run_dir),
        "experiment": "gpu-check",
        "stage": a.stage,
        "params": params,
        "config": {},
        "dataset": {"name": "runne", "format": "runne",
                    "train": [f"{d}/train.jsonl"],
                    "test": [f"{d}/test.jsonl", f"{d}/test_with_answers.jsonl"]},
        "run_dir": run_dir,
        "teacher_dir": os.path.abspath(a.teacher_dir) if a.teacher_dir else "",
        "logits_dir": os.path.abspath(a.logits_dir) if a.logits_dir else "",
        "resources": {"cpus": a.threads},
    }
    os.makedirs(run_dir, exist_ok=True)
    write_atomic(os.path.join(run_dir, "run.json"), spec)


# --- gpu-check.json ----------------------------------------------------------------------

RESULT_KEYS = ("train_tokens_per_s", "peak_device_memory_mb", "steps", "epochs", "train_seconds",
               "device", "amp", "f1", "params", "rows", "infer_seconds", "torch_version",
               "kd_weight", "arch", "examples")


def worker_result(run_dir):
    r = load(os.path.join(run_dir, "result.json"))
    if not r:
        return None
    m = r.get("metrics", {})
    out = {k: m[k] for k in RESULT_KEYS if k in m}
    out["status"] = r.get("status")
    return out


def gtest_summary(path):
    j = load(path)
    if not j:
        return None
    out = {"tests": 0, "passed": 0, "failed": [], "skipped": []}
    for suite in j.get("testsuites", []):
        for t in suite.get("testsuite", []):
            name = f"{suite.get('name')}.{t.get('name')}"
            out["tests"] += 1
            if t.get("failures"):
                out["failed"].append(name)
            elif t.get("result") == "SKIPPED" or t.get("skipped"):
                out["skipped"].append(name)
            else:
                out["passed"] += 1
    return out


def peer_results(path):
    out = {}
    try:
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                out[r["model"]] = r
    except (OSError, ValueError):
        pass
    return out


def derive(doc):
    """The per-model table: kdx's numbers, Python's, their ratios."""
    phases = doc.get("phases", {})
    peer = phases.get("peer", {}).get("models", {})
    models = {}
    for model, phase in [("teacher", "teacher")] + [(a, "student_" + a) for a in ARCHS]:
        k = phases.get(phase, {}).get("kdx")
        p = peer.get("bert" if model == "teacher" else model)
        if not k and not p:
            continue
        row = {"kdx": None, "python": None, "ratio_kdx_over_python": {}}
        if k:
            row["kdx"] = {"train_tokens_per_s": k.get("train_tokens_per_s"),
                          "peak_device_memory_mb": k.get("peak_device_memory_mb")}
        if p:
            row["python"] = {"train_tokens_per_s": p.get("tokens_per_s"),
                             "peak_device_memory_mb": p.get("peak_device_memory_mb")}
        if k and p:
            for key in ("train_tokens_per_s", "peak_device_memory_mb"):
                kv, pv = row["kdx"][key], row["python"][key]
                if isinstance(kv, (int, float)) and isinstance(pv, (int, float)) and pv > 0:
                    row["ratio_kdx_over_python"][key] = round(kv / pv, 3)
        if model == "teacher" and "bert_sdpa" in peer:
            s = peer["bert_sdpa"]
            row["python_sdpa"] = {"train_tokens_per_s": s.get("tokens_per_s"),
                                  "peak_device_memory_mb": s.get("peak_device_memory_mb")}
        models[model] = row
    doc["models"] = models


def cmd_record(a):
    path = os.path.join(a.out, "gpu-check.json")
    doc = load(path) or {"kdx_gpu_check": 1, "started": now_iso(), "phases": {}}
    if a.init:
        doc = {"kdx_gpu_check": 1, "started": now_iso(), "finished": False, "phases": {}}
        doc.update(json.loads(a.init))
    if a.phase:
        ph = doc["phases"].setdefault(a.phase, {})
        if a.status:
            ph["status"] = a.status
        if a.elapsed is not None:
            ph["elapsed_s"] = round(a.elapsed, 2)
        if a.started is not None:
            ph["started_at_s"] = round(a.started, 2)
        if a.timeout is not None:
            ph["timeout_s"] = a.timeout
        for kv in a.set or []:
            k, _, v = kv.partition("=")
            try:
                ph[k] = json.loads(v)
            except ValueError:
                ph[k] = v
        if a.result_dir:
            r = worker_result(a.result_dir)
            if r:
                ph["kdx"] = r
            ph["run_dir"] = os.path.abspath(a.result_dir)
        if a.gtest_json:
            s = gtest_summary(a.gtest_json)
            if s:
                ph["tests"] = s
        if a.peer_jsonl:
            ph["models"] = peer_results(a.peer_jsonl)
        if a.json_file:
            j = load(a.json_file)
            if j is not None:
                ph.update(j if isinstance(j, dict) else {"data": j})
        if a.log:
            ph["log"] = os.path.abspath(a.log)
    if a.top:
        for kv in a.top:
            k, _, v = kv.partition("=")
            try:
                doc[k] = json.loads(v)
            except ValueError:
                doc[k] = v
    doc["updated"] = now_iso()
    derive(doc)
    write_atomic(path, doc)


# --- CMake's view after the node's configure, and the linked libraries --------------------

def cmd_deps(a):
    """Which files CMake resolved for the bundle's libraries, and which the binary loads."""
    m = manifest_of(a.bundle)
    bundle = os.path.realpath(a.bundle)
    cache = {}
    for line in open(os.path.join(a.build, "CMakeCache.txt"), errors="replace"):
        mm = re.match(r"^([A-Za-z0-9_.+-]+):[A-Z]+=(.*)$", line.rstrip("\n"))
        if mm:
            cache[mm.group(1)] = mm.group(2)
    resolved, outside = {}, []
    for name in list(m["cmake_cache"]) + ["Torch_DIR"]:
        v = cache.get(name)
        resolved[name] = v
        if name != "Torch_DIR" and v and not os.path.realpath(v).startswith(bundle + "/") \
                and os.path.realpath(v) != bundle:
            outside.append(f"{name}={v}")
    out = {} if a.binary else {"cmake": resolved, "outside_bundle": outside}
    if a.binary and os.path.exists(a.binary):
        env = dict(os.environ)
        r = subprocess.run(["ldd", a.binary], text=True, capture_output=True, env=env)
        libs, missing = {}, []
        for line in r.stdout.splitlines():
            mm = re.match(r"\s*(\S+) => (.*) \(0x", line)
            if mm:
                libs[mm.group(1)] = mm.group(2)
            elif "not found" in line:
                missing.append(line.strip().split()[0])
        out["from_bundle"] = sorted(k for k, v in libs.items()
                                    if os.path.realpath(v).startswith(bundle + "/"))
        out["not_found"] = missing
        out["torch_and_cuda"] = len([k for k, v in libs.items()
                                     if "torch" in v or "nvidia" in v or "cuda" in v])
        out["system"] = sorted(k for k, v in libs.items()
                               if not os.path.realpath(v).startswith(bundle + "/")
                               and not ("torch" in v or "nvidia" in v or "cuda" in v))
    print(json.dumps(out))


# --- summary -----------------------------------------------------------------------------

def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}{unit}" if abs(v) >= 100 else f"{v:.2f}{unit}"
    return f"{v}{unit}"


def cmd_summary(a):
    doc = load(os.path.join(a.out, "gpu-check.json"), {})
    t = doc.get("torch", {})
    print(f"gpu-check: {doc.get('mode', '?')} mode, torch {t.get('torch', '?')}, device "
          f"{t.get('device', 'none')}; {fmt(doc.get('elapsed_s'))} s of {doc.get('budget_s')} s")
    for name, ph in doc.get("phases", {}).items():
        extra = ""
        if "tests" in ph:
            s = ph["tests"]
            extra = (f" {s['passed']} passed, {len(s['failed'])} failed, {len(s['skipped'])} "
                     "skipped" + (" (" + ", ".join(s["failed"][:5]) + ")" if s["failed"] else ""))
        if ph.get("note"):
            extra += f" [{ph['note']}]"
        print(f"  {name:<16} {ph.get('status', '?'):<9} {fmt(ph.get('elapsed_s')):>7} s{extra}")
    models = doc.get("models", {})
    if models:
        print(f"  {'model':<9} {'kdx tok/s':>11} {'py tok/s':>11} {'ratio':>6}   "
              f"{'kdx MB':>8} {'py MB':>8} {'ratio':>6}")
        for name, row in models.items():
            k, p, r = row.get("kdx") or {}, row.get("python") or {}, row["ratio_kdx_over_python"]
            print(f"  {name:<9} {fmt(k.get('train_tokens_per_s')):>11} "
                  f"{fmt(p.get('train_tokens_per_s')):>11} "
                  f"{fmt(r.get('train_tokens_per_s')):>6}   "
                  f"{fmt(k.get('peak_device_memory_mb')):>8} "
                  f"{fmt(p.get('peak_device_memory_mb')):>8} {fmt(r.get('peak_device_memory_mb')):>6}")
            if "python_sdpa" in row:
                s = row["python_sdpa"]
                print(f"  {'  (sdpa)':<9} {'':>11} {fmt(s.get('train_tokens_per_s')):>11} "
                      f"{'':>6}   {'':>8} {fmt(s.get('peak_device_memory_mb')):>8}")
    print(f"  full results: {os.path.join(os.path.abspath(a.out), 'gpu-check.json')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    for name in ("fix-links", "cmake-args", "check-host"):
        p = sub.add_parser(name)
        p.add_argument("--bundle", required=True)
    p = sub.add_parser("runspec")
    p.add_argument("--stage", required=True, choices=("teacher", "logits", "student"))
    p.add_argument("--arch", default="")
    p.add_argument("--mode", required=True, choices=tuple(PLANS))
    p.add_argument("--data", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--teacher-dir", default="")
    p.add_argument("--logits-dir", default="")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-kd", action="store_true")
    p = sub.add_parser("record")
    p.add_argument("--out", required=True)
    p.add_argument("--init")
    p.add_argument("--phase")
    p.add_argument("--status")
    p.add_argument("--elapsed", type=float)
    p.add_argument("--started", type=float)
    p.add_argument("--timeout", type=int)
    p.add_argument("--set", action="append")
    p.add_argument("--top", action="append")
    p.add_argument("--result-dir")
    p.add_argument("--gtest-json")
    p.add_argument("--peer-jsonl")
    p.add_argument("--json-file")
    p.add_argument("--log")
    p = sub.add_parser("deps")
    p.add_argument("--bundle", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--binary")
    p = sub.add_parser("summary")
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    {"probe": cmd_probe, "fix-links": cmd_fix_links, "cmake-args": cmd_cmake_args,
     "check-host": cmd_check_host, "runspec": cmd_runspec, "record": cmd_record,
     "deps": cmd_deps, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    main()
