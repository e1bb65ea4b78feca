#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise the guest runs of `make bench-scale`.

usage: bench-scale.py RUNS_DIR OUT_DIR COMMIT SIZE...

Reads the "BENCH ..." lines of RUNS_DIR/SIZE/results.log (scripts/guest/bench.sh,
dpf.bench=scale) and writes OUT_DIR/scale.json (every sample, medians,
ratios, the profiles), OUT_DIR/scale.txt (printed too) and OUT_DIR/scale.png.
Every time is a median of the repetitions with min and max; ratios are of
medians. Absolute times are QEMU TCG guest times; only ratios carry over.
Exits non-zero if a run is missing or a measurement failed.
"""
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import fmt_ms, fmt_ratio, has_cairo, parse, ratio, stats  # noqa: E402

# The profile's split of the whole unbind: a sample counts for the first of
# these whose function is on its stack. The revocation is the project's
# work; the rest is the pmem driver's teardown, which upstream pays too.
SPLIT = (
    ("revocation (dev_pagemap_failure)", ("dev_pagemap_failure",)),
    ("memunmap_pages: memmap and direct map", ("memunmap_pages",)),
    ("del_gendisk and the block layer", ("del_gendisk",)),
    ("kill_dax and put_dax", ("kill_dax", "put_dax")),
)
# The revocation's own parts: the filesystem's sync, its shutdown, and the
# sweep of its inodes (fs/dax.c's dax_revoke_sb_mappings()).
SPLIT_REVOCATION = (
    ("  sync_filesystem", ("sync_filesystem",)),
    ("  shutdown", ("ext4_shutdown", "ext4_force_shutdown", "xfs_fs_shutdown",
                    "xfs_force_shutdown")),
    ("  sweep (dax_revoke_inode)", ("dax_revoke_inode",)),
)


def main():
    runs, out, commit, sizes_arg = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
    errors, samples, profiles, device_mib = [], {}, {}, {}
    for size in sizes_arg:
        run = runs / size
        log = run / "results.log"
        status = (run / "status").read_text().strip() if (run / "status").exists() else "missing"
        lines = [l for l in log.read_text(errors="replace").splitlines()
                 if l.startswith("BENCH ")] if log.exists() else []
        if status != "exit 0" or "BENCH done" not in lines:
            errors.append(f"{size}: guest run did not finish ({status})")
        for line in lines:
            kind, kv = parse(line)
            if kind == "error":
                errors.append(f"{size}: {line}")
            elif kind == "device":
                device_mib[size] = int(kv["size_mib"])
            elif kind in ("removal", "ext4", "devdax") and "removal_ms" in kv:
                fs = {"removal": "xfs", "ext4": "ext4", "devdax": "devdax"}[kind]
                key = (size, fs, kv["mode"])
                done, _, probed = kv.get("revoked", "").partition("/")
                if kv.get("ret") != "0" or not probed or done != probed:
                    errors.append(f"{size}: {line}: the removal failed or left mappings")
                samples.setdefault(key + ("unbind",), []).append(float(kv["removal_ms"]))
                if "revoke_ns" in kv:
                    samples.setdefault(key + ("revoke",), []).append(int(kv["revoke_ns"]) / 1e6)
            elif kind == "ext4" and "syncfs_ms" in kv:
                if kv.get("ret") != "0":
                    errors.append(f"{size}: {line}: syncfs failed")
                samples.setdefault((size, "ext4", "syncfs", "sync"), []).append(float(kv["syncfs_ms"]))
            elif kind == "profile":
                fs = kv.get("fs", "xfs")
                p = profiles.setdefault(size, {}).setdefault(
                    fs, {"samples": int(kv["samples"]), "funcs": {}})
                p["funcs"][kv["func"]] = {"self": int(kv["self"]), "incl": int(kv["incl"])}
    st = {"/".join(k): stats(v) for k, v in samples.items()}

    def get(size, fs, mode, what):
        return st.get(f"{size}/{fs}/{mode}/{what}")

    date = datetime.date.today().isoformat()
    lines = [f"make bench-scale, {date}, commit {commit}: release kernel in QEMU TCG (2 vCPUs, no KVM).",
             "Absolute times are guest times under emulation; only the ratios carry over.",
             "64 MiB mapped by 4 processes; the whole unbind and the revocation alone",
             "(dev_pagemap_failure()), guest ms, median [min-max] of the repetitions.", ""]
    head = (f"{'device':>9}  {'XFS ranged unbind':>22} {'revocation':>20} {'XFS off unbind':>22} "
            f"{'XFS pfn unbind':>22} {'ext4 ranged unbind':>22} {'ext4 revocation':>20} "
            f"{'ext4 syncfs alone':>20} {'ext4 pfn unbind':>22} {'devdax teardown':>22}")
    # The syncfs() column only where it was measured (runs before it have none).
    has_sync = any(get(size, "ext4", "syncfs", "sync") for size in sizes_arg)
    if not has_sync:
        head = head.replace(f" {'ext4 syncfs alone':>20}", "")
    lines.append(head)
    for size in sizes_arg:
        mib = device_mib.get(size)
        cells = [get(size, "xfs", "ranged", "unbind"), get(size, "xfs", "ranged", "revoke"),
                 get(size, "xfs", "off", "unbind"), get(size, "xfs", "pfn", "unbind"),
                 get(size, "ext4", "ranged", "unbind"), get(size, "ext4", "ranged", "revoke"),
                 get(size, "ext4", "syncfs", "sync"),
                 get(size, "ext4", "pfn", "unbind"), get(size, "devdax", "off", "unbind")]
        widths = (22, 20, 22, 22, 22, 20, 20, 22, 22)
        if not has_sync:
            del cells[6]
            widths = widths[:6] + widths[7:]
        dev = f"{mib / 1024:.0f} GiB" if mib else size
        lines.append(f"{dev:>9}  " + " ".join(f"{fmt_ms(c):>{w}}" for c, w in zip(cells, widths)))
    lines.append("(n = the repetitions of each cell are in scale.json; pfn runs once at the largest size)")

    targets = []

    def target(name, value, ok, why=None):
        targets.append({"target": name, "measured": value, "met": ok, "why": None if ok else why})

    first, last = sizes_arg[0], sizes_arg[-1]
    growth = {}

    def samples_of(size, fs, funcs):
        """(samples with any of funcs on the stack, all samples) of a profile."""
        p = profiles.get(size, {}).get(fs)
        if not p:
            return None
        return (max((p["funcs"].get(f, {}).get("incl", 0) for f in funcs), default=0),
                p["samples"])

    def spread(c):
        return f"{c['median']:.1f} [{c['min']:.1f}-{c['max']:.1f}] ms"

    def revocation_why(fs):
        a, b = get(first, fs, "ranged", "revoke"), get(last, fs, "ranged", "revoke")
        pa = samples_of(first, fs, ("dev_pagemap_failure",))
        pb = samples_of(last, fs, ("dev_pagemap_failure",))
        if not a or not b or not pa or not pb:
            return None
        seen = (f"{first} {spread(a)}, {last} {spread(b)}: the 1 ms profile of one unbind finds "
                f"the revocation in {pa[0]} samples at {first} and {pb[0]} at {last}")
        if pb[0] <= pa[0] * 1.2 + 1:
            return (seen + ", flat, so the miss is the spread of the repetitions, not work "
                    "that grows with the device")
        return seen + ": it grows; the profiles below split it (sync, shutdown, sweep)"
    for fs in ("xfs", "ext4"):
        g = ratio(get(last, fs, "ranged", "revoke"), get(first, fs, "ranged", "revoke"))
        growth[f"{fs} revocation {last}/{first}"] = g
        why = revocation_why(fs)
        s_first, s_last = get(first, "ext4", "syncfs", "sync"), get(last, "ext4", "syncfs", "sync")
        if fs == "ext4" and s_first and s_last:
            r_first = get(first, fs, "ranged", "revoke")
            r_last = get(last, fs, "ranged", "revoke")
            why = (f"ext4's own syncfs() of the same dirty mappings, timed alone, grows "
                   f"{s_first['median']:.1f} -> {s_last['median']:.1f} ms "
                   f"({fmt_ratio(ratio(s_last, s_first))}); the revocation syncs first, as "
                   "upstream's removal does in del_gendisk(); without it the revocation is "
                   f"{r_first['median'] - s_first['median']:.1f} -> "
                   f"{r_last['median'] - s_last['median']:.1f} ms")
        if g is not None:
            target(f"{fs} revocation at {last} within 1.2x of {first}", fmt_ratio(g), g <= 1.2, why)
        g = ratio(get(last, fs, "ranged", "unbind"), get(first, fs, "ranged", "unbind"))
        growth[f"{fs} whole unbind {last}/{first}"] = g
    for size in sizes_arg:
        t = ratio(get(size, "xfs", "ranged", "unbind"), get(size, "devdax", "off", "unbind"))
        growth[f"xfs ranged unbind / devdax teardown {size}"] = t
        if size == last and t is not None:
            why = None
            pm = samples_of(size, "xfs", ("memunmap_pages",))
            dd = get(size, "devdax", "off", "unbind")
            rv = get(size, "xfs", "ranged", "revoke")
            if pm and dd and rv:
                why = (f"memunmap_pages() (the memmap and direct map teardown, upstream's code in "
                       f"both) is {pm[0]} of the {pm[1]} samples of the ranged XFS unbind at {size}, "
                       f"and upstream's devdax teardown of the same size spreads {spread(dd)}; "
                       "the rest is what a devdax device does not have: a block device to "
                       "delete (del_gendisk) and a filesystem whose mappings are revoked "
                       f"({rv['median']:.1f} ms)")
            target(f"XFS whole unbind at {last} within 1.2x of upstream's teardown (devdax, mode off)",
                   fmt_ratio(t), t <= 1.2, why)
        p = ratio(get(size, "xfs", "pfn", "unbind"), get(size, "xfs", "ranged", "unbind"))
        growth[f"xfs pfn / ranged unbind {size}"] = p
    lines.append("")
    for name, g in growth.items():
        lines.append(f"  {name}: {fmt_ratio(g)}")

    split = {}
    for size, by_fs in profiles.items():
        for fs, p in sorted(by_fs.items(), key=lambda kv: kv[0] != "xfs"):
            n = p["samples"]
            split.setdefault(size, {})[fs] = {}
            lines.append("")
            lines.append(f"Profile of one ranged {'XFS' if fs == 'xfs' else fs} unbind at {size} "
                         f"({n} samples of the unbinding task's kernel stack, every ms; a function "
                         "on the stack of a sample counts for it):")
            for name, funcs in SPLIT + SPLIT_REVOCATION:
                incl = max((p["funcs"].get(f, {}).get("incl", 0) for f in funcs), default=0)
                split[size][fs][name.strip()] = incl
                lines.append(f"  {name:<40} {incl:>6} samples {100 * incl / max(n, 1):5.1f}%")
            top = sorted(p["funcs"].items(), key=lambda kv: -kv[1]["self"])[:12]
            lines.append("  where the samples were running (self), the top 12:")
            for f, c in top:
                lines.append(f"    {f:<44} {c['self']:>6} {100 * c['self'] / max(n, 1):5.1f}%")

    lines.append("")
    lines.append("Targets:")
    for t in targets:
        lines.append(f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {t['measured']}")
        if t.get("why"):
            lines.append(f"         why: {t['why']}")
    for e in errors:
        lines.append(f"ERROR: {e}")
    table = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.txt").write_text(table)
    print(table, end="")
    result = {"date": date, "commit": commit, "device_mib": device_mib, "times": st,
              "growth": growth, "profiles": profiles, "split": split, "targets": targets,
              "errors": errors}
    (out / "scale.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")

    # The plot: against the device's size, the revocation, the whole unbind
    # (ranged, pfn, off) and upstream's teardown of a devdax namespace.
    series = (("xfs", "ranged", "revoke", "revocation (ranged)"),
              ("xfs", "ranged", "unbind", "whole unbind (ranged)"),
              ("xfs", "pfn", "unbind", "whole unbind (pfn at a time)"),
              ("xfs", "off", "unbind", "whole unbind (upstream, off)"),
              ("devdax", "off", "unbind", "devdax teardown (upstream)"))
    data = out / "scale.dat"
    with data.open("w") as f:
        for size in sizes_arg:
            gib = device_mib.get(size, 0) / 1024
            vals = [get(size, *s[:3]) for s in series]
            f.write(f"{gib:.2f} " + " ".join(f"{v['median']:.3f}" if v else "NaN" for v in vals) + "\n")
    if shutil.which("gnuplot") and device_mib:
        plot = [
            "set terminal pngcairo size 1000,560 font ',11'" if has_cairo() else "set terminal png size 1000,560",
            f"set output '{out / 'scale.png'}'",
            f'set title "pmem removal, 64 MiB of XFS mapped, as the device grows\\n{date}, {commit}, QEMU TCG guest time"',
            "set xlabel 'fsdax namespace (GiB)'", "set ylabel 'guest ms (median, log scale)'",
            "set logscale xy 10", "set grid", "set key outside right",
            "plot " + ", ".join(f"'{data}' using 1:{i + 2} with linespoints lt {i + 1} pt {i + 4} title '{s[3]}'"
                                for i, s in enumerate(series)),
        ]
        subprocess.run(["gnuplot"], input="\n".join(plot) + "\n", text=True, check=True)
    else:
        errors.append("gnuplot not found: no plot")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
