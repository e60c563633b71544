#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Turn bench/run's raw samples into the table, CSV, JSON and a gnuplot chart.

bench/run records one CSV line per run (run 0 is the warm-up and is left out
here).  A figure is the median of the remaining runs with their min and max;
a method/case in which any run failed, or whose destination failed its
checksum, is shown as "failed" -- never as a number, never as 0; a method
that could not be had (HPN-SSH without its source) as "not built".

Each run also carries the CPU it cost (milliseconds): on the host (all the
method's processes, servers and QEMU's non-vCPU threads) and, in the vm
setting, in the guest.  They are shown as CPU seconds per GiB moved (median
of the verified runs), in a table and a chart of their own.
"""
import argparse
import csv
import json
import os
import statistics
from collections import OrderedDict

UNITS = {"file": "MB/s", "files": "files/s", "latency": "ms"}
# Statuses of a row that did not run at all, shown as such with the reason:
# HPN-SSH without a build, qemu-ga above the size it is run at.
SKIPPED = ("not built", "not run")


def load_methods(path):
    """methods.tsv: setting, method, how -- in the order the table shows them."""
    how = OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            setting, method, text = line.rstrip("\n").split("\t", 2)
            how.setdefault(setting, OrderedDict())[method] = text
    return how


def figure(kind, bytes_, files, secs):
    """The shown value of one run: throughput, files per second or ms."""
    if kind == "file":
        return bytes_ / secs / 1e6 if secs > 0 else float("inf")
    if kind == "files":
        return files / secs if secs > 0 else float("inf")
    return secs * 1e3


def sig(v, digits=4):
    """Round to a few significant digits: the runs vary far more than that."""
    return float(f"{v:.{digits}g}")


def summarise(samples):
    groups, warm = OrderedDict(), {}
    for s in samples:
        key = (s["setting"], s["method"], s["case"])
        if int(s["run"]) == 0:  # warm-up: not counted, but a failure is worth a word
            if s["status"] != "ok":
                warm[key] = s.get("note") or s["status"]
            continue
        groups.setdefault(key, []).append(s)
    out = []
    for (setting, method, case), runs in groups.items():
        kind = runs[0]["kind"]
        bytes_, files = int(runs[0]["bytes"]), int(runs[0]["files"])
        ok = [r for r in runs if r["status"] == "ok"]
        notes = OrderedDict((r.get("note") or r["status"], 1) for r in runs if r["status"] != "ok")
        bad = [r["status"] for r in runs if r["status"] != "ok"]
        if not bad:
            status = "ok"
        elif all(b == bad[0] for b in bad) and bad[0] in SKIPPED:
            status = bad[0]
        else:
            status = "mismatch" if "mismatch" in bad else "failed"
        row = OrderedDict(
            setting=setting, method=method, case=case, kind=kind, bytes=bytes_,
            files=files, runs=len(runs), verified_runs=len(ok), status=status,
            unit=UNITS[kind],
        )
        if notes:
            row["why"] = "; ".join(notes)
        if (setting, method, case) in warm:
            row["warmup_failed"] = warm[(setting, method, case)]
        if not bad:
            secs = [float(r["seconds"]) for r in ok]
            vals = sorted(figure(kind, bytes_, files, x) for x in secs)
            row.update(median_s=sig(statistics.median(secs)), min_s=sig(min(secs)), max_s=sig(max(secs)),
                       median=sig(statistics.median(vals)), min=sig(vals[0]), max=sig(vals[-1]))
            gib = bytes_ / 2**30
            for side in ("host", "guest"):
                ms = [float(r[f"{side}_cpu_ms"]) for r in ok if r.get(f"{side}_cpu_ms")]
                if ms and kind != "latency" and len(ms) == len(ok):
                    row[f"{side}_cpu_s_per_gib"] = sig(statistics.median(ms) / 1000 / gib, 3)
        out.append(row)
    return out


def human(b):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return f"{b >> shift} {unit}"
    return f"{b} B"


def num(v):
    """Three significant figures, without exponent noise."""
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def cell(row):
    if row is None:
        return "–"
    if row["status"] != "ok":
        return row["status"] if row["status"] in SKIPPED else "failed"
    if row["runs"] == 1:
        return num(row["median"])
    return f"{num(row['median'])} ({num(row['min'])}–{num(row['max'])})"


def case_header(rows, case):
    kind = next(r["kind"] for r in rows if r["case"] == case)
    return f"{case} ({UNITS[kind]})"


def table(results, how, meta):
    lines = []
    for setting in OrderedDict((r["setting"], 1) for r in results):
        rows = [r for r in results if r["setting"] == setting]
        cases = list(OrderedDict((r["case"], 1) for r in rows))
        known = how.get(setting, {})
        methods = [m for m in known if any(r["method"] == m for r in rows)]
        methods += [m for m in OrderedDict((r["method"], 1) for r in rows) if m not in methods]
        lines.append(f"### {setting}")
        lines.append("")
        if setting == "vm" and meta.get("vm"):
            lines.append(meta["vm"])
            lines.append("")
        lines.append("| method | how | " + " | ".join(case_header(rows, c) for c in cases) + " | verified |")
        lines.append("|---|---|" + "---:|" * len(cases) + "---|")
        for m in methods:
            mine = {r["case"]: r for r in rows if r["method"] == m}
            ok = sum(r["verified_runs"] for r in mine.values())
            total = sum(r["runs"] for r in mine.values() if r["status"] not in SKIPPED)
            lines.append(f"| {m} | {known.get(m, '')} | " + " | ".join(cell(mine.get(c)) for c in cases)
                         + f" | {ok}/{total} |")
        lines.append("")
        failed = [r for r in rows if r["status"] != "ok" and r["status"] not in SKIPPED]
        for r in failed:
            lines.append(f"- failed: {r['method']}, {r['case']} ({r['runs'] - r['verified_runs']} of "
                         f"{r['runs']} runs): {r.get('why', r['status'])}")
        unbuilt = OrderedDict((r["method"], r.get("why", "")) for r in rows if r["status"] == "not built")
        for m, why in unbuilt.items():
            lines.append(f"- {m}: {why}")
        for r in rows:
            if r["status"] == "not run":
                lines.append(f"- {r['method']}, {r['case']}: not run: {r.get('why', '')}")
        failed += [r for r in rows if r["status"] in SKIPPED]
        for r in rows:
            if r.get("warmup_failed"):
                lines.append(f"- warm-up run failed (not counted): {r['method']}, {r['case']}: "
                             f"{r['warmup_failed']}")
        if failed or any(r.get("warmup_failed") for r in rows):
            lines.append("")
        if setting == "fanout":
            lines += fanout_ratios(rows)
    runs = meta.get("runs", "?")
    vm_runs = meta.get("vm_runs", runs)
    in_vm = f" ({vm_runs} in the vm setting)" if vm_runs != runs and any(r["setting"] == "vm" for r in results) else ""
    how_many = ("One run each (smoke test: no warm-up, figures are not meaningful). " if meta.get("smoke")
                else f"Median of {runs} runs{in_vm} after a warm-up run, (min–max) in brackets. ")
    lines.append(how_many +
                 "MB/s = 10^6 bytes/s over the whole transfer, from starting both ends to both "
                 "exiting; files/s likewise for the many-files case; latency = one 4 KiB file "
                 "from start to destination verified. \"verified\" counts runs whose destination "
                 "matched the source's checksum (cksum on the host, busybox crc32 in a guest). \"failed\": a run exited non-zero, "
                 "timed out or failed its checksum. \"–\": not applicable.")
    lines.append("")
    return "\n".join(lines)


def fanout_ratios(rows):
    """The fan-out table's point: the time to fill N regions against one
    (issue 23's goal: 1 GiB into 4 in at most 1.5x the time of 1)."""
    out = []
    for m in OrderedDict((r["method"], 1) for r in rows):
        mine = sorted((r for r in rows if r["method"] == m and r["status"] == "ok"),
                      key=lambda r: int(r["case"].rsplit(" ", 1)[-1]))
        if len(mine) < 2:
            continue
        one = mine[0]
        parts = [f"{r['case'].rsplit(' ', 1)[-1]} regions {r['median_s'] / one['median_s']:.2f}x"
                 for r in mine[1:]]
        out.append(f"- {m}: time against {one['case'].rsplit(' ', 1)[-1]} region "
                   f"({num(one['median_s'])} s): " + ", ".join(parts))
    if out:
        out += ["", "MB/s here are one copy's bytes over the time to fill every region (from starting "
                "every end to every end exiting), every copy verified. The receivers run on this same "
                "machine, so N regions cost N receivers' CPU here that guests would spend on their own; "
                "the CPU table counts it per GiB of the source (one copy).",
                ""]
    return out


def cpu_num(v):
    return "0" if v == 0 else num(v)


def cpu_table(results, how):
    """CPU seconds per GiB moved: host (all the method's host processes) and,
    in the vm setting, guest; latency cases are left out (per GiB of 4 KiB
    means nothing)."""
    lines = ["## CPU per GiB moved", ""]
    for setting in OrderedDict((r["setting"], 1) for r in results):
        rows = [r for r in results if r["setting"] == setting and r["kind"] != "latency"]
        if not any("host_cpu_s_per_gib" in r for r in rows):
            continue
        cases = list(OrderedDict((r["case"], 1) for r in rows))
        known = how.get(setting, {})
        methods = [m for m in known if any(r["method"] == m for r in rows)]
        methods += [m for m in OrderedDict((r["method"], 1) for r in rows) if m not in methods]
        vm = setting not in ("host", "fanout")  # fanout: host only, as host
        lines.append(f"### {setting}" + (": host s / guest s per GiB" if vm else ": host s per GiB"))
        lines.append("")
        lines.append("| method | " + " | ".join(cases) + " |")
        lines.append("|---|" + "---:|" * len(cases))
        for m in methods:
            mine = {r["case"]: r for r in rows if r["method"] == m}
            cells = []
            for c in cases:
                r = mine.get(c)
                if r is None or ("host_cpu_s_per_gib" not in r and r["status"] == "ok"):
                    cells.append("–")
                elif r["status"] != "ok":
                    cells.append(cell(r))
                elif vm:
                    g = r.get("guest_cpu_s_per_gib")
                    cells.append(f"{cpu_num(r['host_cpu_s_per_gib'])} / {'?' if g is None else cpu_num(g)}")
                else:
                    cells.append(cpu_num(r["host_cpu_s_per_gib"]))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("CPU seconds (user+sys) per GiB (2^30 bytes) moved, median of the verified runs. Host: every "
                 "host process of the method (both ends on the host; clients, servers with the processes they "
                 "fork, virtiofsd), and in the vm setting QEMU's threads other than its vCPUs (its device "
                 "emulation, user-mode network, 9p server, chardevs). Guest: the guest's own /proc/stat, less "
                 "the cost of reading it. Under tcg the guest's CPU is emulated, many times slower than under "
                 "KVM; the host column is what carries over best. Small sizes are dominated by start-up "
                 "(process starts, key exchange) and the 10 ms clock tick.")
    lines.append("")
    return "\n".join(lines)


def load_idle(path):
    """idle.tsv: setting, method, window seconds, CPU ns, context switches
    of each resident receiver measured while it waited for a sender."""
    rows = []
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                setting, method, secs, cpu_ns, switches = line.rstrip("\n").split("\t")
                secs = float(secs)
                rows.append(OrderedDict(setting=setting, method=method, window_s=secs,
                                        cpu_ms=sig(int(cpu_ns) / 1e6, 3),
                                        cpu_pct=sig(int(cpu_ns) / 1e9 / secs * 100, 2),
                                        wakeups_per_s=sig(int(switches) / secs, 3)))
    return rows


def idle_table(idle, how):
    """The residents' idle cost, per setting, in the table's method order."""
    if not idle:
        return ""
    out = ["## Idle residents", "",
           "A resident receiver waiting for the next sender, measured over "
           f"{idle[0]['window_s']:g} s once it had waited 3 s (a wait is idle after 2 s): "
           "CPU time of all its threads (`/proc/PID/task/*/schedstat`) and their context "
           "switches, voluntary and not (`/proc/PID/task/*/status`), each a wake-up or a "
           "preemption.", "",
           "| setting | method | CPU (ms) | % of a core | wake-ups/s |", "|---|---|---:|---:|---:|"]
    order = {}
    for setting, methods in how.items():
        for i, m in enumerate(methods):
            order[(setting, m)] = i
    for r in sorted(idle, key=lambda r: (r["setting"], order.get((r["setting"], r["method"]), 99))):
        out.append(f"| {r['setting']} | {r['method']} | {num(r['cpu_ms'])} | "
                   f"{num(r['cpu_pct'])} | {num(r['wakeups_per_s'])} |")
    return "\n".join(out) + "\n"


def write_csv(results, path):
    cols = ["setting", "method", "case", "kind", "bytes", "files", "runs", "verified_runs",
            "status", "median_s", "min_s", "max_s", "unit", "median", "min", "max",
            "host_cpu_s_per_gib", "guest_cpu_s_per_gib"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in results:
            w.writerow([("" if r.get(c) is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]))
                        for c in cols])


def write_json(f, meta, how, results, idle=()):
    """results: setting -> method -> case -> figures; one method a line, so
    that it reads and diffs well and stays a few KB when committed.  value
    is [median, min, max] in unit (seconds are in results.csv)."""
    nested = OrderedDict()
    for r in results:
        leaf = OrderedDict(bytes=r["bytes"], runs=r["runs"], verified=r["verified_runs"], status=r["status"])
        if r["kind"] == "files":
            leaf["files"] = r["files"]
        for k in ("why", "warmup_failed"):
            if r.get(k):
                leaf[k] = r[k]
        if r["status"] == "ok":
            leaf["value"] = [r["median"], r["min"], r["max"]]
            leaf["unit"] = r["unit"]
            for side in ("host", "guest"):
                if f"{side}_cpu_s_per_gib" in r:
                    leaf[f"{side}_cpu_s_per_gib"] = r[f"{side}_cpu_s_per_gib"]
        nested.setdefault(r["setting"], OrderedDict()).setdefault(r["method"], OrderedDict())[r["case"]] = leaf
    out = ['{"meta": ' + json.dumps(meta, ensure_ascii=False) + ",",
           ' "methods": ' + json.dumps({k: v for k, v in how.items() if k in nested}, ensure_ascii=False) + ",", ' "results": {']
    settings = list(nested.items())
    for i, (setting, methods) in enumerate(settings):
        out.append(f'  {json.dumps(setting)}: {{')
        items = list(methods.items())
        for j, (m, cases) in enumerate(items):
            out.append(f"   {json.dumps(m)}: {json.dumps(cases, ensure_ascii=False)}"
                       + ("," if j < len(items) - 1 else ""))
        out.append("  }" + ("," if i < len(settings) - 1 else ""))
    out.append("}" + (',' if idle else "}"))
    if idle:
        out.append(' "idle": ' + json.dumps(list(idle), ensure_ascii=False) + "}")
    f.write("\n".join(out) + "\n")


def chart_name(setting):
    return "chart.png" if setting == "host" else f"chart-{setting}.png"


def write_charts(results, meta, outdir):
    """One chart per setting (throughput by size, one line per method):
    chart.png for host, chart-vm.png for vm.  Writes NAME.gp and NAME.dat
    for gnuplot, which bench/run runs and then deletes."""
    for setting in OrderedDict((r["setting"], 1) for r in results):
        rows = [r for r in results if r["setting"] == setting and r["kind"] == "file"]
        if rows and setting != "fanout":  # one size: no curve to draw
            write_chart(rows, setting, meta, outdir)


def write_chart(rows, setting, meta, outdir):
    png = chart_name(setting)
    base = png[:-4]
    blocks, titles = [], []
    for m in OrderedDict((r["method"], 1) for r in rows):
        pts = sorted((r for r in rows if r["method"] == m and r["status"] == "ok"), key=lambda r: r["bytes"])
        if not pts:
            continue
        blocks.append("\n".join(f"{r['bytes'] / 2**20:g} {r['median']:.6g} {r['min']:.6g} {r['max']:.6g}"
                                for r in pts))
        titles.append(m)
    with open(os.path.join(outdir, base + ".dat"), "w", encoding="utf-8") as f:
        f.write("\n\n\n".join(blocks) + "\n")
    # Distinct colours and dash patterns: gnuplot's default palette
    # repeats after eight lines.
    colours = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#c0a000", "#0072b2", "#d55e00",
               "#cc79a7", "#000000", "#808080"]
    plots = ", ".join(
        f"'{base}.dat' index {i} using 1:2:3:4 with yerrorlines lw {3 if t == 'nshm' else 2} "
        f"lc rgb '{colours[i % len(colours)]}' pt {7 if t == 'nshm' else 5 + i % 4} ps 0.8 title '{t}'"
        for i, t in enumerate(titles))
    date = meta.get("date", "")[:10]
    sizes = sorted({r["bytes"] for r in rows})
    xtics = ", ".join(f"'{human(b)}' {b / 2**20:g}" for b in sizes)
    # libgd's png, not pngcairo: a third of the bytes for the same chart,
    # and the PNG is committed with every full run.
    lo, hi = (sizes[0] / 2**20 / 1.5, sizes[-1] / 2**20 * 1.5)
    where = "both ends on the host" if setting == "host" else "host to a QEMU guest"
    runs = "1 run" if meta.get("smoke") else f"median of {meta.get('runs', '?')}, bars min..max"
    gp = f"""set terminal png size 760,480
set output '{png}'
set title "{where}: MB/s by file size, {runs}, {date}"
set logscale xy
set xlabel 'file size'
set xtics ({xtics})
set ylabel 'MB/s (10^6 bytes/s)'
set grid xtics ytics
set key outside below horizontal
set xrange [{lo:g}:{hi:g}]
"""
    gp += f"plot {plots}\n" if plots else "set label 'no data' at graph 0.5,0.5\nplot 1 notitle\n"
    with open(os.path.join(outdir, base + ".gp"), "w", encoding="utf-8") as f:
        f.write(gp)


COLOURS = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#c0a000", "#0072b2", "#d55e00",
           "#cc79a7", "#000000", "#808080", "#8b4513", "#2f4f4f", "#ff1493", "#6b8e23"]


def cpu_chart_name(setting):
    return "chart-cpu.png" if setting == "host" else f"chart-cpu-{setting}.png"


def write_cpu_charts(results, meta, outdir):
    """CPU s/GiB by file size, one line per method: chart-cpu.png (host) and
    chart-cpu-vm.png (two panels: host, guest)."""
    for setting in OrderedDict((r["setting"], 1) for r in results):
        rows = [r for r in results if r["setting"] == setting and r["kind"] == "file"
                and r["status"] == "ok" and "host_cpu_s_per_gib" in r]
        if not rows or setting == "fanout":
            continue
        png = cpu_chart_name(setting)
        base = png[:-4]
        methods = list(OrderedDict((r["method"], 1) for r in rows))
        sides = ["host"] + (["guest"] if setting != "host" else [])
        blocks = []
        for side in sides:
            for m in methods:
                pts = sorted((r for r in rows if r["method"] == m and r.get(f"{side}_cpu_s_per_gib") is not None),
                             key=lambda r: r["bytes"])
                # log scale: a 0 (below the clock tick) cannot be drawn
                blocks.append("\n".join(f"{r['bytes'] / 2**20:g} {max(r[f'{side}_cpu_s_per_gib'], 0.01):.6g}"
                                        for r in pts) or "nan nan")
        with open(os.path.join(outdir, base + ".dat"), "w", encoding="utf-8") as f:
            f.write("\n\n\n".join(blocks) + "\n")
        sizes = sorted({r["bytes"] for r in rows})
        xtics = ", ".join(f"'{human(b)}' {b / 2**20:g}" for b in sizes)
        lo, hi = (sizes[0] / 2**20 / 1.5, sizes[-1] / 2**20 * 1.5)
        date = meta.get("date", "")[:10]
        where = "both ends on the host" if setting == "host" else "host to a QEMU guest"
        gp = f"""set terminal png size {760 if len(sides) == 1 else 1100},520
set output '{png}'
set logscale xy
set xlabel 'file size'
set xtics ({xtics})
set ylabel 'CPU s per GiB'
set grid xtics ytics
set key outside below horizontal
set xrange [{lo:g}:{hi:g}]
"""
        if len(sides) > 1:
            gp += f"set multiplot layout 1,2 title \"{where}: CPU seconds per GiB moved, median, {date}\"\n"
        for i, side in enumerate(sides):
            title = (f"{side} CPU" if len(sides) > 1
                     else f"{where}: CPU seconds per GiB moved (all processes), median, {date}")
            plots = ", ".join(
                f"'{base}.dat' index {i * len(methods) + j} using 1:2 with linespoints "
                f"lw {3 if m == 'nshm' else 2} lc rgb '{COLOURS[j % len(COLOURS)]}' "
                f"pt {7 if m == 'nshm' else 5 + j % 4} ps 0.8 title '{m}'"
                for j, m in enumerate(methods))
            gp += f"set title \"{title}\"\nplot {plots}\n"
        if len(sides) > 1:
            gp += "unset multiplot\n"
        with open(os.path.join(outdir, base + ".gp"), "w", encoding="utf-8") as f:
            f.write(gp)


def results_md(path, table_md, meta, settings, cpu_settings=()):
    m, v = meta["machine"], meta["versions"]
    text = f"""# nshm benchmark results

Latest full run of `bench/run` (regenerated by it; do not edit by hand).

- **Command:** `{meta['command'].strip()}` (`make bench` runs it), {meta['elapsed_s']} s wall time
- **Date:** {meta['date']}
- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}, Linux {m['kernel']}
  (itself a VM: memory touched for the first time is slow, hence the warm-up)
- **Versions:** """ + "; ".join(f"{k}: {val}" for k, val in v.items()) + f"""

{table_md}
""" + "\n".join(f"![{s} throughput by size](results/{chart_name(s)})" for s in settings) + "\n" \
        + "\n".join(f"![{s} CPU per GiB by size](results/{cpu_chart_name(s)})" for s in cpu_settings) + f"""

Data: [results.csv](results/results.csv), [results.json](results/results.json) (medians, min, max);
every run's time is in `samples.csv` beside them (not committed).

## How it is measured

- Sources are made by `bench/mkdata` (xorshift, not repeating) on tmpfs; destinations are on tmpfs.
- All network methods run inside a private network namespace the script creates (`unshare -n`),
  on 127.0.0.1 only: an sshd with a throw-away key, an HTTP server, netcat listeners.
- Methods take turns within each round, so a noisy moment of the (shared) machine hits all alike.
- Every destination is checked with `cksum` against the source (`dd`: against zeros); a tree
  checksum (names, sizes, contents) for the many-files case.
- `memcpy` is timed inside one process (bench/memcpy-bw.c); 1 MiB and 16 MiB fit in the caches,
  so those two figures are cache bandwidth, still an upper bound for moving that many bytes.
- The vm setting boots one guest with every device at once (ivshmem-plain, virtio-net on QEMU's
  user network, two 9p shares, virtiofs) through the harness in tests/vm/lib.sh, and moves each
  file from the host's tmpfs into the guest's tmpfs. The host times each transfer from starting
  both ends until the guest's end is seen finished on its console (polled every 10 ms); the guest
  then checks the copy with busybox `crc32`. Guest-initiated connections go to QEMU's user-net
  gateway, which QEMU turns into connections to 127.0.0.1 inside the benchmark's namespace.
- The resident rows (`nshm-resident*`) run one `nshm-get --serve` per row for the whole setting,
  on a region of its own; only `nshm-put` starts per transfer, and it ends once the resident has
  verified and placed the file. Their timed span holds what the fresh pair's does (`timeout` and
  the programs under it), no more. A polling resident whose last transfer ended more than 2 s
  before (the large sizes, where every other row runs in between) is idle and looks every
  200 ms (nshm-get(1)); on the host `nshm-put` wakes it at once through futex(2), while a guest's
  polling resident sees a host sender up to 200 ms late; a resident with a doorbell is rung at
  once. Host: polling, and woken by `nshm-server`'s eventfds. vm: in the
  guest, polling on an ivshmem-plain; on an ivshmem-doorbell served by the host's `nshm-server`
  without the guest module (the guest polls); and on that device once the module (kmod/, built
  against the guest kernel's headers) is loaded: its mapping and MSI-X interrupts, measured after
  every other vm row because the module binds every ivshmem device. Each resident's idle cost is
  measured at the end of its setting (the "Idle residents" table); in the vm setting it is the
  guest's CPU, emulated.
- Every latency includes starting `timeout` and the program under it and running `cksum` on the
  copy; the `cp` row is little more than that, so it is the floor here: what a method adds to a
  4 KiB transfer is its latency less cp's (on this machine a process start alone is 1-5 ms).
- This machine is itself a VM that hands freed memory back to its host (virtio-balloon free page
  reporting), so re-touched memory is sometimes slow: the min–max spread of the large sizes is
  mostly that, and the median is the figure to read.
- scp, scp-aes128gcm, hpnscp and hpnscp-none each connect afresh (key exchange included); OpenSSH's
  rows go to Debian's sshd, HPN-SSH's to an `hpnsshd` of its own (another port, `NoneEnabled yes`),
  built by `bench/hpn.sh` from the vendored source into `/var/cache/nshm-bench` (not the repository).
  In the vm setting both servers run in the guest.
- qemu-ga: Debian's `qemu-guest-agent` binary (fetched with `apt-get download`, not installed on
  the host) runs in the guest on a virtserialport; `bench/vmchan.py` writes the file with
  `guest-file-open`/`guest-file-write`/`guest-file-close`, 48 KiB of data (64 KiB of base64) per
  write, awaiting each answer as real clients do. virtio-serial: the same script sends the raw
  bytes into a second virtserialport's socket chardev; the guest reads exactly the file's length
  (`head -c`) and answers one byte, after which the host end exits.
- CPU per GiB: for each verified run, host CPU = user+sys of the method's own processes (bash's
  `times` over the children it waited for), plus the servers (sshd, hpnsshd, httpd, virtiofsd,
  kept in a cgroup of their own so that what they fork is counted), plus, in the vm setting,
  QEMU's threads other than its vCPU threads (`/proc/<qemu>/task/*/stat`, threads named with
  `-name debug-threads=on`). Guest CPU = the change in the guest's `/proc/stat`
  (user+nice+system+irq+softirq) between a read just before and just after the run, less the
  median cost of two such reads with nothing between them. Clock ticks are 10 ms, so the 1 MiB
  figures are coarse.
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", required=True)
    ap.add_argument("--methods", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--results-md")
    ap.add_argument("--idle", help="idle.tsv of bench/run's idle_cost")
    a = ap.parse_args()

    with open(a.samples, newline="", encoding="utf-8") as f:
        samples = list(csv.DictReader(f))
    with open(a.meta, encoding="utf-8") as f:
        meta = json.load(f)
    how = load_methods(a.methods)
    results = summarise(samples)
    table_md = table(results, how, meta)
    cpu_md = cpu_table(results, how)
    cpu_settings = [st for st in OrderedDict((r["setting"], 1) for r in results)
                    if any(r["setting"] == st and "host_cpu_s_per_gib" in r for r in results)]
    if cpu_settings:
        table_md += "\n" + cpu_md
    idle = load_idle(a.idle)
    if idle:
        table_md += "\n" + idle_table(idle, how)

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table_md)
    write_csv(results, os.path.join(a.out, "results.csv"))
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        write_json(f, meta, how, results, idle)
    for old in os.listdir(a.out):  # a chart of a setting not run this time is stale
        if old.startswith("chart") and old.endswith(".png"):
            os.remove(os.path.join(a.out, old))
    write_charts(results, meta, a.out)
    write_cpu_charts(results, meta, a.out)
    if a.results_md:
        results_md(a.results_md, table_md, meta,
                   [st for st in OrderedDict((r["setting"], 1) for r in results) if st != "fanout"],
                   [st for st in cpu_settings if st != "fanout"])


if __name__ == "__main__":
    main()
