#!/usr/bin/env python3
"""Helpers for scripts/bench: deterministic payloads, timing one process, the report.

  bench.py gen DIR NAME:SIZE:COUNT...     write COUNT files NAME-NNN of SIZE bytes (seeded, incompressible)
  bench.py time RESULTS LABEL LOG [--rss] -- CMD...
                                          run CMD once, its output to LOG; append
                                          "LABEL<TAB>seconds<TAB>maxrss_kib" to RESULTS
  bench.py busy [SECONDS]                 print the % of CPU busy over SECONDS (default 1)
  bench.py report RESULTS META [-o FILE]  print the markdown report (and write it to FILE)
"""
import os
import random
import re
import statistics
import subprocess
import sys
import time


# --------------------------------------------------------------------- gen
def gen(args):
    d = args[0]
    os.makedirs(d, exist_ok=True)
    chunk = 16 << 20
    for spec in args[1:]:
        name, size, count = spec.split(":")
        size, count = int(size), int(count)
        stem, dot, ext = name.partition(".")
        for i in range(count):
            fname = f"{stem}-{i:05d}{dot}{ext}"
            # str seeds are hashed with SHA-512 (seed version 2): the same on every machine.
            r = random.Random(f"s3am-bench/{fname}/{size}")
            with open(os.path.join(d, fname), "wb") as f:
                left = size
                while left:
                    n = min(chunk, left)
                    f.write(r.randbytes(n))
                    left -= n


# --------------------------------------------------------------------- time
def timeit(args):
    results, label, log = args[0], args[1], args[2]
    rest = args[3:]
    rss = False
    if rest and rest[0] == "--rss":
        rss, rest = True, rest[1:]
    if not rest or rest[0] != "--":
        sys.exit("bench.py time: want RESULTS LABEL LOG [--rss] -- CMD...")
    cmd = rest[1:]
    rssfile = log + ".rss"
    if rss:
        cmd = ["/usr/bin/time", "-v", "-o", rssfile] + cmd
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = rc = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime  # the process and the children it waited for
    if rc != 0:
        with open(log, "rb") as f:
            tail = f.read()[-4000:].decode(errors="replace")
        sys.stderr.write(f"bench: {label}: exit {rc}: {' '.join(cmd)}\n{tail}\n")
        sys.exit(1)
    kib = ""
    if rss:
        with open(rssfile) as f:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
        kib = m.group(1) if m else ""
    with open(results, "a") as f:
        f.write(f"{label}\t{dt:.6f}\t{kib}\t{cpu:.3f}\n")
    extra = f", max RSS {int(kib) / 1024:.1f} MiB" if kib else ""
    print(f"    {label:<24} {dt * 1000:10.1f} ms  (CPU {cpu * 1000:.0f} ms{extra})", flush=True)


# --------------------------------------------------------------------- busy
def busy(args):
    """Print the share of CPU time (0-100) spent by anything over one second:
    measured before each figure, when nothing of the benchmark runs."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = snap()
    time.sleep(float(args[0]) if args else 1.0)
    t1, i1 = snap()
    print(round(100 * (1 - (i1 - i0) / max(1, t1 - t0))))


# --------------------------------------------------------------------- report
# Each row: figure, what, tool label, peer name, peer label, target ratio (or None), unit.
# A peer label of None means the figure stands alone (an absolute target, in TARGETS).
ROWS = [
    ("1", "check with code hash, 20k files, warm", "check_20k", "`git status --porcelain`", "git_20k", 1.25, "s"),
    ("1", "hash alone, 20k files, warm", "hash_20k", "`git status --porcelain`", "git_20k", None, "s"),
    ("1", "check with code hash, 20k files, every file touched", "check_20k_touch", "`git status` after the touch", "git_20k_touch", None, "s"),
    ("1", "hash alone, 20k files, every file touched", "hash_20k_touch", "`git status` after the touch", "git_20k_touch", None, "s"),
    ("2", "check with code hash, 200k files, warm", "check_200k", "`git status --porcelain`", "git_200k", 1.0, "s"),
    ("2", "hash alone, 200k files, warm", "hash_200k", "`git status --porcelain`", "git_200k", None, "s"),
    ("2", "check with code hash, 200k files, every file touched", "check_200k_touch", "`git status` after the touch", "git_200k_touch", None, "s"),
    ("2", "hash alone, 200k files, every file touched", "hash_200k_touch", "`git status` after the touch", "git_200k_touch", None, "s"),
    ("3", "upload 551 MiB in 208 files", "up552_tool", "`s5cmd cp`", "up552_s5cmd", 0.9, "s"),
    ("3", "upload 551 MiB in 208 files", "up552_tool", "`aws s3 cp --recursive`", "up552_aws", None, "s"),
    ("4", "upload one 1 GiB file", "up1g_tool", "`s5cmd cp`", "up1g_s5cmd", 1.0, "s"),
    ("4", "upload one 1 GiB file", "up1g_tool", "`aws s3 cp`", "up1g_aws", None, "s"),
    ("5", "upload 10,000 files of 10 KiB", "up10k_tool", "`s5cmd cp`", "up10k_s5cmd", 1.0, "s"),
    ("5", "upload 10,000 files of 10 KiB", "up10k_tool", "`aws s3 cp --recursive`", "up10k_aws", None, "s"),
    ("6", "check that finds the commit (whole process)", "found_tool", "`s5cmd head` of the record (reference)", "found_s5cmd", None, "ms"),
    ("7", "cache hit: check copying 208 objects (551 MiB) inside S3", "hit_tool", "`s5cmd cp s3://… s3://…`", "hit_s5cmd", 0.9, "s"),
    ("8", "peak RSS uploading the 1 GiB file", "up1g_tool", "`s5cmd cp`", "up1g_s5cmd", None, "rss"),
    ("8", "peak RSS uploading the 1 GiB file", "up1g_tool", "`aws s3 cp`", "up1g_aws", None, "rss"),
    ("18", "download 551 MiB in 208 files", "dl552_tool", "`s5cmd cp`", "dl552_s5cmd", 1.0, "s"),
    ("18", "run-to-run spread of the 551 MiB download: slowest run / median", "dl552_tool", "`s5cmd cp`", "dl552_s5cmd", 1.5, "spread"),
    ("18", "download 551 MiB in 208 files", "dl552_tool", "`aws s3 cp --recursive`", "dl552_aws", None, "s"),
    ("18", "peak RSS downloading the 551 MiB in 208 files", "dl552_tool", "`s5cmd cp`", "dl552_s5cmd", None, "rss"),
    ("18", "the same without verification: a build that skips the SHA-256 (`-tags s3am_unverified`, not released)", "dl552_unverified", "`s5cmd cp`", "dl552_s5cmd", None, "s"),
    ("19", "download one 1 GiB file", "dl1g_tool", "`s5cmd cp`", "dl1g_s5cmd", 1.0, "s"),
    ("19", "run-to-run spread of the 1 GiB download: slowest run / median", "dl1g_tool", "`s5cmd cp`", "dl1g_s5cmd", 1.5, "spread"),
    ("19", "download one 1 GiB file", "dl1g_tool", "`aws s3 cp`", "dl1g_aws", None, "s"),
    ("19", "peak RSS downloading the 1 GiB file", "dl1g_tool", "`s5cmd cp`", "dl1g_s5cmd", None, "rss"),
    ("19", "peak RSS downloading the 1 GiB file", "dl1g_tool", "`aws s3 cp`", "dl1g_aws", None, "rss"),
    ("19", "the same without verification: a build that skips the SHA-256 (`-tags s3am_unverified`, not released)", "dl1g_unverified", "`s5cmd cp`", "dl1g_s5cmd", None, "s"),
    ("17", "check of 100 components, 200k files, warm", "check_c100", "`git status --porcelain`", "git_c100", 1.5, "s"),
    ("20", "prune dry run: plan 10,000 commit sets (210,000 objects) and 1,000 cache entries (1 run)", "prune_plan_tool", "–", "", None, "s"),
    ("20", "prune: plan and delete 9,990 commit sets and 1,000 cache entries, 230,790 objects (1 run)", "prune_apply_tool", "–", "", None, "s"),
    ("20", "peak RSS of that prune", "prune_apply_tool", "–", "", None, "rss"),
    ("17", "hash of 100 components alone, 200k files, warm", "hash_c100", "`git status --porcelain`", "git_c100", None, "s"),
    ("21", "check that finds a commit of 100 components, 200k files (whole process)", "found_c100_tool", "–", "", None, "ms"),
]


def net_rows(rtts, k):
    """Figures 11-16: the same work through the netproxy, at each round-trip time."""
    rows = []
    for fig, name, what, target in (
        ("11", "up2k", "upload 2,000 files of 10 KiB", 0.9),
        ("12", "up552", "upload 551 MiB in 208 files", 0.9),
        ("13", "up1g", "upload one 1 GiB file", 0.9),
    ):
        for r in rtts:
            rows.append((fig, f"{what}, HTTPS, {r} ms round trip", f"{name}_r{r}_tool", "`s5cmd cp`", f"{name}_r{r}_s5cmd", target, "s"))
            rows.append((fig, f"{what}, HTTPS, {r} ms round trip", f"{name}_r{r}_tool", "`aws s3 cp`", f"{name}_r{r}_aws", None, "s"))
    for r in rtts:
        rows.append(("13", f"peak RSS uploading the 1 GiB file, {r} ms round trip", f"up1g_r{r}_tool", "`s5cmd cp`", f"up1g_r{r}_s5cmd", None, "rss"))
    for r in rtts:
        # One request's round trip, its connection set-up included, is what `s5cmd head` takes.
        rows.append(("14", f"check that finds the commit, HTTPS, {r} ms round trip", f"found_r{r}_tool", "`s5cmd head` of the record", f"found_r{r}_s5cmd", "+20ms", "ms"))
    for r in rtts:
        rows.append(("15", f"cache hit copying 208 objects, HTTPS, {r} ms round trip", f"hit_r{r}_tool", "`s5cmd cp s3://… s3://…`", f"hit_r{r}_s5cmd", 0.9, "s"))
    rows.append(("16", f"upload 2,000 files of 10 KiB, {rtts[0]} ms, throttled (503 above {k} in flight)", "throttle_throttled_tool", "the same upload unthrottled", "throttle_free_tool", 1.5, "s"))
    rows.append(("16", f"upload 2,000 files of 10 KiB, {rtts[0]} ms, throttled (503 above {k} in flight)", "throttle_throttled_tool", "`s5cmd cp`, throttled", "throttle_throttled_s5cmd", None, "s"))
    return rows


# Figure 10 checks the harness, not the tool: s5cmd against itself, in a table of its own.
HARNESS_ROWS = [
    ("second: straight after the first, no pause", "pos_next"),
    ("third: after a pause again, the earlier two still in the bucket", "pos_paused"),
]
# Absolute targets: label -> (limit, unit text)
ABS = {"prune_apply_tool": (60, "≤ 60 s"), "rss:prune_apply_tool": (256 * 1024, "≤ 256 MiB"),
       "found_tool": (0.025, "≤ 25 ms"), "found_c100_tool": (0.030, "≤ 30 ms"), "rss:up1g_tool": (64 * 1024, "≤ 64 MiB"), "rss:dl1g_tool": (64 * 1024, "≤ 64 MiB"), "rss:dl552_tool": (64 * 1024, "≤ 64 MiB")}
ABS.update({f"rss:up1g_r{r}_tool": (64 * 1024, "≤ 64 MiB") for r in range(1, 1000)})
BINARY_LIMIT = 16_000_000
# A spread target (no run above 1.5x the median) counts only over this many runs.
SPREAD_RUNS = 10


def load(results):
    t, rss, cpu = {}, {}, {}
    with open(results) as f:
        for line in f:
            label, sec, kib, c = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
            t.setdefault(label, []).append(float(sec))
            if kib:
                rss.setdefault(label, []).append(int(kib))
            if c:
                cpu.setdefault(label, []).append(float(c))
    return t, rss, cpu


def spread(vals):
    return max(vals) / statistics.median(vals)


def cell(vals, unit, n):
    if not vals:
        return "–"
    if unit == "spread":
        return f"{spread(vals):.2f}× (slowest {max(vals):.3f} s, median {statistics.median(vals):.3f} s, {len(vals)} runs)"
    med, lo, hi = statistics.median(vals), min(vals), max(vals)
    runs = "" if len(vals) == n else f", {len(vals)} runs"
    if unit == "ms":
        return f"{med * 1000:.1f} ms ({lo * 1000:.1f}–{hi * 1000:.1f}{runs})"
    if unit == "rss":
        return f"{med / 1024:.1f} MiB ({lo / 1024:.1f}–{hi / 1024:.1f}{runs})"
    return f"{med:.3f} s ({lo:.3f}–{hi:.3f}{runs})"


def report(args):
    out = None
    if "-o" in args:
        i = args.index("-o")
        out = args[i + 1]
        args = args[:i] + args[i + 2:]
    results, metafile = args
    meta = {}
    with open(metafile) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    n = int(meta.get("runs", "5"))
    times, rss, cpu = load(results) if os.path.exists(results) else ({}, {}, {})

    lines = []
    w = lines.append
    w(f"Command: `{meta.get('command', 'scripts/bench')}`  ")
    w(f"Date: {meta.get('date', '?')}  ")
    w(f"Runs: {n} per figure unless noted; each cell is the median (min–max).  ")
    w("")
    w("| Machine | |")
    w("| --- | --- |")
    for k in ("tool", "cpu", "nproc", "memory", "kernel", "go", "minio", "s5cmd", "aws", "git"):
        if k in meta:
            w(f"| {k} | {meta[k]} |")
    idle = {k[5:]: int(v) for k, v in meta.items() if k.startswith("busy_")}
    if idle:
        worst = max(idle, key=idle.get)
        w(f"| other load | CPU busy before each figure, at most {idle[worst]}% (before figure {worst}) |")
    w("")
    w("| # | Figure | s3-asset-manager | Peer | Peer result | Ratio | Target | Met |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    met_all = []
    rtts = [int(x) for x in meta.get("rtts", "20,50").split(",")]
    rows = ROWS + net_rows(rtts, meta.get("throttle", "?"))
    for fig, what, tl, pname, pl, target, unit in rows:
        src = rss if unit == "rss" else times
        tv, pv = src.get(tl, []), src.get(pl, [])
        if not tv and not pv:
            continue
        ratio, tgt, met = "–", "–", "–"
        if tv and unit == "spread":
            ratio = "–"
            tgt = f"≤ {target:g}× the median, ≥ {SPREAD_RUNS} runs"
            if len(tv) < SPREAD_RUNS:
                met = f"unknown ({len(tv)} runs)"
            else:
                met = "met" if spread(tv) <= target else "**not met**"
                met_all.append((fig, what, met))
        elif tv and pv and target == "+20ms":
            d = statistics.median(tv) - statistics.median(pv)
            ratio = f"{d * 1000:+.1f} ms"
            tgt = "≤ +20 ms"
            met = "met" if d <= 0.020 else "**not met**"
            met_all.append((fig, what, met))
        elif tv and pv:
            r = statistics.median(tv) / statistics.median(pv)
            ratio = f"{r:.2f}×"
            if target is not None:
                tgt = f"≤ {target:g}×"
                met = "met" if r <= target else "**not met**"
                met_all.append((fig, what, met))
        key = ("rss:" + tl) if unit == "rss" else tl
        if key in ABS and tv and (fig, what) not in [(a, b) for a, b, _ in met_all]:
            limit, text = ABS[key]
            tgt = text
            met = "met" if statistics.median(tv) <= limit else "**not met**"
            met_all.append((fig, what, met))
        w(f"| {fig} | {what} | {cell(tv, unit, n)} | {pname} | {cell(pv, unit, n)} | {ratio} | {tgt} | {met} |")
    if "binary_bytes" in meta:
        b = int(meta["binary_bytes"])
        met = "met" if b <= BINARY_LIMIT else "**not met**"
        w(f"| 9 | binary size, `CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"` | "
          f"{b / 1e6:.1f} MB ({b:,} bytes) | – | – | – | ≤ 16 MB | {met} |")
        met_all.append(("9", "binary", met))
    w("")
    ok = sum(1 for *_, m in met_all if m == "met")
    w(f"Targets met: {ok} of {len(met_all)}.")
    base = times.get("pos_settled", [])
    if base:
        w("")
        w("Figure 10, a check of the harness (not the tool): the same `s5cmd cp` of the 10,000 small")
        w("files three times in a row, against the first, which follows the delete and the 2 s pause")
        w(f"each timed run gets: {cell(base, 's', n)}.")
        w("")
        w("| # | `s5cmd cp` of 10,000 files | Time | Ratio | Faster in |")
        w("| --- | --- | --- | --- | --- |")
        for what, label in HARNESS_ROWS:
            v = times.get(label, [])
            if not v:
                continue
            faster = sum(1 for a, b in zip(v, base) if a < b)
            w(f"| 10 | {what} | {cell(v, 's', n)} | {statistics.median(v) / statistics.median(base):.2f}× "
              f"| {faster} of {min(len(v), len(base))} |")
    # Client CPU (user + system) of the same runs: on a 2-core loopback set-up every
    # CPU-second a client spends is taken from the server.
    slow = {}
    for k, v in meta.items():
        if k.startswith("slowdown_throttled_"):
            who = k.split("_")[2]
            refused, passed = (v.split() + ["0", "0"])[:2]
            slow.setdefault(who, []).append(f"{refused} of {int(refused) + int(passed)}")
    failed = [f"run {k.rsplit('_', 1)[1]}: {v} files" for k, v in meta.items() if k.startswith("failed_throttled_s5cmd_")]
    if slow:
        w("")
        w(f"Figure 16: 503 SlowDown answers per throttled run (above {meta.get('throttle', '?')} requests in flight), "
          "of all requests: " + "; ".join(f"{who}: {', '.join(v)}" for who, v in sorted(slow.items())) + ".")
        if failed:
            w(f"s5cmd gave up on files (exit status not 0) in {'; '.join(failed)}.")
    seen, crow = set(), []
    for fig, what, tl, pname, pl, target, unit in rows:
        if unit in ("rss", "spread") or (what, pl) in seen or not cpu.get(tl) or not cpu.get(pl):
            continue
        seen.add((what, pl))
        tc, pc = statistics.median(cpu[tl]), statistics.median(cpu[pl])
        crow.append(f"| {fig} | {what} | {tc:.3f} s | {pname} | {pc:.3f} s | {tc / pc:.2f}× |")
    if crow:
        w("")
        w("Client CPU time (user + system) of the same runs, medians:")
        w("")
        w("| # | Figure | s3-asset-manager | Peer | Peer | Ratio |")
        w("| --- | --- | --- | --- | --- | --- |")
        lines.extend(crow)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if out:
        with open(out, "w") as f:
            f.write(text)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"gen": gen, "time": timeit, "busy": busy, "report": report}.get(cmd, lambda a: sys.exit(__doc__))(args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
