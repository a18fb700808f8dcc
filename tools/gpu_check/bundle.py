#!/usr/bin/env python3
"""tools/gpu-check --prepare: assembles gpu-check-bundle/ on a Debian machine with kdx's -dev
packages installed, for a GPU node that has a Python PyTorch, a compiler, CMake and CUDA but
none of those libraries (and no network).

What goes in is not a hand-kept list. A KDX_WORKER_ONLY configure of this tree is run here
(against a LibTorch, so that the configure is the node's), and every library CMake resolved
to a path under /usr (the <Pkg>_DIR of each find_package, FindOpenSSL's paths, pkg-config's
libraries, pkg-config itself) is mapped to its Debian package with `dpkg -S`. Those packages'
headers, CMake package files, .pc files and libraries are copied with their /usr layout
(`/usr/X` -> `bundle/X`, which keeps Debian's CMake files relocatable), then every shared
object's DT_NEEDED closure is followed and added, except for the libraries that any glibc
system has (BASE_SONAMES). The .pc files get a relocatable prefix (${pcfiledir}), the
multiarch include directory is merged into include/, and pkgconf is bundled behind a
wrapper (the node may have no pkg-config). manifest.json records the packages, the CMake
cache entries to pass on the node (relative to the bundle), the symbolic links (re-created
by tools/gpu-check if a transfer dropped them) and the newest glibc/libstdc++ symbol
versions the bundled binaries need.

Also a slice of the real RuNNE data (data/runne/: the first N training documents, the first
M test documents and their answers, ners.txt).

Standard library only (runs with Debian's python3).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

ARCH = "x86_64-linux-gnu"
# Shared objects every glibc-based distribution has (glibc itself, the GCC runtime) or that
# a stock Ubuntu/Debian cannot be without (dpkg and apt depend on them).
BASE_SONAMES = {
    "linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0",
    "libdl.so.2", "librt.so.1", "libresolv.so.2", "libutil.so.1", "libstdc++.so.6",
    "libgcc_s.so.1", "libz.so.1", "libbz2.so.1.0", "liblzma.so.5", "libzstd.so.1",
}
# Cache entries that are not kdx's own third-party libraries: the toolchain, LibTorch and
# what LibTorch's config finds (CUDA, MKL, kineto, ...).
SKIP_VARS = re.compile(
    r"^(CMAKE_|CCACHE$|CUDA|CUDAToolkit_|TORCH|Torch_|Caffe2_|C10_|c10_|kineto|MKL|"
    r"Protobuf|protobuf|NVTX|nvtx|CUDNN|cudnn|NCCL|Python|PYTHON|_GTEST_)")
# Packages that come with a compiler: never bundled even if a cache entry points into them.
SKIP_PACKAGES = re.compile(r"^(libc6|libc6-dev|libstdc\+\+.*|libgcc.*|gcc.*|g\+\+.*|cmake.*|"
                           r"linux-libc-dev|libcrypt-dev)$")
KEEP_PREFIXES = ("/usr/include/", f"/usr/lib/{ARCH}/", "/usr/share/cmake/", "/usr/lib/cmake/",
                 "/usr/share/pkgconfig/", "/usr/lib/pkgconfig/")
LIMIT_MB = 60
SHARED_DIRS = {"/usr/include", f"/usr/include/{ARCH}", "/usr/lib", f"/usr/lib/{ARCH}", "/usr/share",
               "/usr/lib/cmake", f"/usr/lib/{ARCH}/cmake", "/usr/share/cmake"}


def log(msg):
    print(f"gpu-check --prepare: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def read_cache(path):
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"^([A-Za-z0-9_.+-]+):([A-Z]+)=(.*)$", line.rstrip("\n"))
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def packages_of(path):
    """dpkg -S: the packages that own a path ("pkg:arch, pkg2:arch: /path")."""
    r = subprocess.run(["dpkg", "-S", path], text=True, capture_output=True)
    if r.returncode != 0:
        return []
    pkgs = set()
    for line in r.stdout.splitlines():
        owners, _, owned = line.rpartition(": ")
        if owned.strip() != path:
            continue
        for p in owners.split(","):
            pkgs.add(p.strip().split(":")[0])
    return sorted(pkgs)


def version_of(pkg):
    return run(["dpkg-query", "-W", "-f=${Version}", pkg]).strip()


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path):
    out = run(["readelf", "-d", path])
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def soname(path):
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", run(["readelf", "-d", path]))
    return m.group(1) if m else None


def symbol_versions(path):
    out = run(["readelf", "-V", "-W", path])
    return set(re.findall(r"Name: ((?:GLIBC|GLIBCXX|CXXABI)_[0-9.]+)", out))


def vkey(v):
    name, _, num = v.partition("_")
    return (name, tuple(int(x) for x in num.split(".") if x.isdigit()))


class Bundle:
    def __init__(self, root):
        self.root = root
        self.links = {}  # bundle-relative link -> target text
        self.files = set()  # bundle-relative paths of regular files

    def rel(self, src):
        assert src.startswith("/usr/"), src
        return src[len("/usr/"):]

    def copy(self, src):
        """Copies /usr/X to bundle/X; a symbolic link stays a link and its target comes too."""
        rel = self.rel(src)
        if rel in self.files or rel in self.links:
            return
        dst = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            target = os.readlink(src)
            if os.path.isabs(target):
                real = os.path.realpath(src)
                target = os.path.relpath(real, os.path.dirname(src))
            self.links[rel] = target
            if os.path.lexists(dst):
                os.remove(dst)
            os.symlink(target, dst)
            resolved = os.path.normpath(os.path.join(os.path.dirname(src), target))
            if resolved.startswith("/usr/"):
                self.copy(resolved)
            else:
                die(f"{src} points outside /usr ({resolved})")
        elif os.path.isfile(src):
            shutil.copy2(src, dst)
            self.files.add(rel)

    def elf_files(self):
        return sorted(f for f in self.files if is_elf(os.path.join(self.root, f)))


def find_soname(soname):
    for d in (f"/usr/lib/{ARCH}", f"/lib/{ARCH}", "/usr/lib", "/lib"):
        p = os.path.join(d, soname)
        if os.path.exists(p):
            # /lib is /usr/lib on a merged-/usr Debian: name it by its /usr path.
            if p.startswith("/lib"):
                p = "/usr" + p
            return p
    return None


def configure_probe(repo, build, torch_prefix, cuda):
    cmd = ["cmake", "-S", repo, "-B", build, "-DKDX_WORKER_ONLY=ON",
           "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={torch_prefix}"]
    if cuda:
        cmd.append(f"-DCMAKE_CUDA_COMPILER={cuda}")
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    log("configuring a KDX_WORKER_ONLY build to see which libraries CMake finds: " + " ".join(cmd))
    r = subprocess.run(cmd, text=True, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        die("the probe configure failed (above)")
    return read_cache(os.path.join(build, "CMakeCache.txt"))


def slice_data(src, dst, n_train, n_test):
    os.makedirs(dst, exist_ok=True)

    def lines(path):
        return [l for l in open(path, encoding="utf-8") if l.strip()]

    train = lines(os.path.join(src, "train.jsonl"))[:n_train]
    test = lines(os.path.join(src, "test.jsonl"))[:n_test]
    ids = {json.loads(l)["id"] for l in test}
    answers = [l for l in lines(os.path.join(src, "test_with_answers.jsonl"))
               if json.loads(l)["id"] in ids]
    if len(answers) != len(test):
        die(f"{src}: {len(test)} test documents but {len(answers)} answers for them")
    for name, rows in (("train.jsonl", train), ("test.jsonl", test),
                       ("test_with_answers.jsonl", answers)):
        with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
            f.writelines(rows)
    shutil.copy2(os.path.join(src, "ners.txt"), os.path.join(dst, "ners.txt"))
    return {"source": src, "train_docs": len(train), "test_docs": len(test),
            "train_bytes": sum(len(l.encode()) for l in train)}


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            p = os.path.join(d, f)
            total += os.lstat(p).st_size
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--out", required=True, help="the bundle directory (recreated)")
    ap.add_argument("--torch-prefix", required=True, help="a LibTorch for the probe configure")
    ap.add_argument("--cuda-compiler", default="", help="nvcc, for a CUDA LibTorch")
    ap.add_argument("--probe-build", required=True, help="scratch build dir for the probe")
    ap.add_argument("--data", required=True, help="the RuNNE directory (train.jsonl, ...)")
    ap.add_argument("--train-docs", type=int, default=200)
    ap.add_argument("--test-docs", type=int, default=50)
    ap.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    a = ap.parse_args()

    if not shutil.which("dpkg"):
        die("--prepare reads Debian's packages (dpkg): run it on the Debian build machine")
    for tool in ("cmake", "readelf"):
        if not shutil.which(tool):
            die(f"{tool} not found")
    cache = configure_probe(a.repo, a.probe_build, a.torch_prefix, a.cuda_compiler)
    torch_real = os.path.realpath(a.torch_prefix)

    # 1. What CMake resolved under /usr, and who owns it.
    entries = {}
    for name, (typ, value) in sorted(cache.items()):
        if typ not in ("PATH", "FILEPATH") or SKIP_VARS.match(name):
            continue
        if not value.startswith("/usr/") or value.startswith("/usr/local/"):
            continue
        if os.path.realpath(value).startswith(torch_real + "/"):
            continue
        entries[name] = value
    if "PKG_CONFIG_EXECUTABLE" not in entries:
        die("the probe found no pkg-config under /usr")
    pkgconf_exe = os.path.realpath(entries.pop("PKG_CONFIG_EXECUTABLE"))
    packages = {}
    for name, value in entries.items():
        # A shared directory (FindOpenSSL's include dir is /usr/include) says nothing about
        # who provides the library: its package comes in through the library's own entry.
        if value.rstrip("/") in SHARED_DIRS:
            continue
        owners = [p for p in packages_of(value) if not SKIP_PACKAGES.match(p)]
        if not owners:
            log(f"note: {name}={value} belongs to no bundled package; left out")
            continue
        for p in owners:
            packages.setdefault(p, []).append(name)
    log("libraries CMake found: " + ", ".join(f"{n}={v}" for n, v in entries.items()))
    log("their Debian packages: " + ", ".join(sorted(packages)))

    # 2. Copy the packages' build files.
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    b = Bundle(a.out)  # the bundle is the prefix: include/, lib/, share/, bin/ (+ data/)
    pkg_info = {}
    for pkg in sorted(packages):
        paths = run(["dpkg", "-L", pkg]).splitlines()
        has_so = any(re.search(r"\.so(\.|$)", p) for p in paths)
        for p in paths:
            if not p.startswith(KEEP_PREFIXES) or os.path.isdir(p) and not os.path.islink(p):
                continue
            # Static archives only where a package has nothing else (GoogleTest).
            if p.endswith(".a") and has_so:
                continue
            b.copy(p)
        copyright = f"/usr/share/doc/{pkg}/copyright"
        if os.path.exists(copyright):
            b.copy(copyright)
        pkg_info[pkg] = {"version": version_of(pkg), "for": packages[pkg]}

    # 3. pkgconf (the node may have no pkg-config) and the DT_NEEDED closure.
    os.makedirs(os.path.join(b.root, "bin"), exist_ok=True)
    shutil.copy2(pkgconf_exe, os.path.join(b.root, "bin", "pkgconf"))
    b.files.add("bin/pkgconf")
    for pkg in packages_of(pkgconf_exe):
        pkg_info.setdefault(pkg, {"version": version_of(pkg), "for": ["PKG_CONFIG_EXECUTABLE"]})
    wrapper = os.path.join(b.root, "bin", "pkg-config")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                "# The bundled pkgconf, looking only at the bundle's .pc files.\n"
                "here=$(cd \"$(dirname \"$0\")\" && pwd)\n"
                f"lib=$here/../lib/{ARCH}\n"
                f": \"${{PKG_CONFIG_LIBDIR:=$lib/pkgconfig:$here/../share/pkgconfig}}\"\n"
                "export PKG_CONFIG_LIBDIR\n"
                "LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec \"$here/pkgconf\" \"$@\"\n")
    os.chmod(wrapper, 0o755)
    b.files.add("bin/pkg-config")
    # Every shared library under its SONAME too (the name the loader asks for): a -dev
    # package's libX.so may point straight at libX.so.N.M (libutf8proc-dev does).
    for f in b.elf_files():
        so = soname(os.path.join(b.root, f))
        if so and not os.path.lexists(os.path.join(b.root, os.path.dirname(f), so)):
            src = find_soname(so)
            if src:
                b.copy(src)
            else:
                b.links[os.path.join(os.path.dirname(f), so)] = os.path.basename(f)
                os.symlink(os.path.basename(f), os.path.join(b.root, os.path.dirname(f), so))
    runtime = {}
    todo = b.elf_files()
    seen = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for so in needed(os.path.join(b.root, f)):
            if so in BASE_SONAMES or f"lib/{ARCH}/{so}" in b.files or f"lib/{ARCH}/{so}" in b.links:
                continue
            src = find_soname(so)
            if not src:
                die(f"{f} needs {so}, which is not installed here")
            b.copy(src)
            for pkg in packages_of(os.path.realpath(src)) or packages_of(src):
                runtime.setdefault(pkg, {"version": version_of(pkg), "for": []})["for"].append(so)
            todo = b.elf_files()
    for pkg, info in runtime.items():
        pkg_info.setdefault(pkg, info)
    # The runtime packages that the -dev packages' links led to (libzip4, libssl3, ...).
    for f in b.elf_files():
        for pkg in packages_of("/usr/" + f) or packages_of("/" + f):
            if pkg not in pkg_info:
                pkg_info[pkg] = {"version": version_of(pkg), "for": []}
            if not pkg_info[pkg]["for"]:
                pkg_info[pkg].setdefault("files", []).append(f)

    # 4. Relocation: one include directory, .pc files relative to themselves.
    multi = os.path.join(b.root, "include", ARCH)
    if os.path.isdir(multi):
        for d, _, files in os.walk(multi):
            for name in files:
                src = os.path.join(d, name)
                dst = os.path.join(b.root, "include", os.path.relpath(src, multi))
                if os.path.exists(dst):
                    die(f"{dst} exists in both include/ and include/{ARCH}/")
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
        shutil.rmtree(multi)
        for rel in list(b.files):
            if rel.startswith(f"include/{ARCH}/"):
                b.files.discard(rel)
                b.files.add("include/" + rel[len(f"include/{ARCH}/"):])
    for rel in sorted(b.files):
        if not rel.endswith(".pc"):
            continue
        p = os.path.join(b.root, rel)
        up = os.path.relpath(b.root, os.path.dirname(p))
        text = open(p).read()
        text = re.sub(r"^prefix=/usr$", "prefix=${pcfiledir}/" + up, text, flags=re.M)
        text = text.replace(f"/include/{ARCH}", "/include").replace("=/usr/", "=${prefix}/")
        open(p, "w").write(text)
    for rel in sorted(b.files):
        if rel.endswith(".cmake"):
            for ln, line in enumerate(open(os.path.join(b.root, rel)), 1):
                if "/usr/" in line and "_realOrig" not in line and "cross-prefix" not in line \
                        and "_IMPORT_PREFIX \"/usr/" not in line and "PREFIX_DIR \"/usr\"" not in line:
                    log(f"warning: {rel}:{ln} names /usr: {line.strip()}")

    # 5. The cache entries for the node, relative to the bundle's prefix.
    cmake_vars = {}
    for name, value in entries.items():
        rel = b.rel(value)
        rel = rel.replace(f"include/{ARCH}", "include")
        if not os.path.lexists(os.path.join(b.root, rel)):
            log(f"note: {name}={value} is not in the bundle; the node's CMake finds it itself")
            continue
        cmake_vars[name] = rel
    cmake_vars["PKG_CONFIG_EXECUTABLE"] = "bin/pkg-config"

    versions = set()
    for f in b.elf_files():
        versions |= symbol_versions(os.path.join(b.root, f))
    newest = {}
    for v in versions:
        kind = v.partition("_")[0]
        if kind not in newest or vkey(v) > vkey(newest[kind]):
            newest[kind] = v

    data = slice_data(a.data, os.path.join(a.out, "data", "runne"), a.train_docs, a.test_docs)
    data["dir"] = "data/runne"
    size = du(a.out)
    manifest = {
        "kdx_gpu_check_bundle": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": run(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]).strip(),
        "arch": ARCH,
        "prefix": ".",
        "packages": pkg_info,
        "cmake_cache": cmake_vars,
        "pkg_config_libdir": [f"lib/{ARCH}/pkgconfig", "share/pkgconfig"],
        "lib_dir": f"lib/{ARCH}",
        "links": dict(sorted(b.links.items())),
        "needs_symbol_versions": newest,
        "data": data,
        "size_bytes": size,
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    size = du(a.out)
    log(f"bundle {a.out}: {len(b.files)} files, {len(b.links)} links, "
        f"{size / 2**20:.1f} MiB; packages: " +
        ", ".join(f"{p} {i['version']}" for p, i in sorted(pkg_info.items())))
    log(f"data: {data['train_docs']} training and {data['test_docs']} test documents")
    log("the bundled binaries need at most " + ", ".join(sorted(newest.values())))
    print(f"{size / 2**20:.1f}")
    if size > a.limit_mb * 2**20:
        die(f"the bundle is {size / 2**20:.1f} MiB, over the {a.limit_mb:g} MiB limit")


if __name__ == "__main__":
    main()
