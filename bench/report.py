#!/usr/bin/env python3
"""Turn bench/run's raw samples into the table, CSV, JSON and a gnuplot chart.

bench/run records one CSV line per run (run 0 is the warm-up and is left out
here).  A figure is the median of the remaining runs with their min and max;
a method/case in which any run failed, or whose destination failed its
checksum, is shown as "failed" -- never as a number, never as 0.
"""
import argparse
import csv
import json
import os
import statistics
from collections import OrderedDict

UNITS = {"file": "MB/s", "files": "files/s", "latency": "ms"}


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
    groups = OrderedDict()
    for s in samples:
        if int(s["run"]) == 0:
            continue  # warm-up
        key = (s["setting"], s["method"], s["case"])
        groups.setdefault(key, []).append(s)
    out = []
    for (setting, method, case), runs in groups.items():
        kind = runs[0]["kind"]
        bytes_, files = int(runs[0]["bytes"]), int(runs[0]["files"])
        ok = [r for r in runs if r["status"] == "ok"]
        bad = [r["status"] for r in runs if r["status"] != "ok"]
        row = OrderedDict(
            setting=setting, method=method, case=case, kind=kind, bytes=bytes_,
            files=files, runs=len(runs), verified_runs=len(ok),
            status="ok" if not bad else ("mismatch" if "mismatch" in bad else "failed"),
            unit=UNITS[kind],
        )
        if not bad:
            secs = [float(r["seconds"]) for r in ok]
            vals = sorted(figure(kind, bytes_, files, x) for x in secs)
            row.update(median_s=sig(statistics.median(secs)), min_s=sig(min(secs)), max_s=sig(max(secs)),
                       median=sig(statistics.median(vals)), min=sig(vals[0]), max=sig(vals[-1]))
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
        return "failed"
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
            total = sum(r["runs"] for r in mine.values())
            lines.append(f"| {m} | {known.get(m, '')} | " + " | ".join(cell(mine.get(c)) for c in cases)
                         + f" | {ok}/{total} |")
        lines.append("")
    runs = meta.get("runs", "?")
    how_many = ("One run each (smoke test: no warm-up, figures are not meaningful). " if meta.get("smoke")
                else f"Median of {runs} runs after a warm-up run, (min–max) in brackets. ")
    lines.append(how_many +
                 "MB/s = 10^6 bytes/s over the whole transfer, from starting both ends to both "
                 "exiting; files/s likewise for the many-files case; latency = one 4 KiB file "
                 "from start to destination verified. \"verified\" counts runs whose destination "
                 "matched the source's checksum (cksum on the host, busybox crc32 in a guest). \"failed\": a run exited non-zero, "
                 "timed out or failed its checksum. \"–\": not applicable.")
    lines.append("")
    return "\n".join(lines)


def write_csv(results, path):
    cols = ["setting", "method", "case", "kind", "bytes", "files", "runs", "verified_runs",
            "status", "median_s", "min_s", "max_s", "unit", "median", "min", "max"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in results:
            w.writerow([("" if r.get(c) is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]))
                        for c in cols])


def write_json(f, meta, how, results):
    """results: setting -> method -> case -> figures; one method a line, so
    that it reads and diffs well and stays a few KB when committed.
    seconds and value are [median, min, max]; value is in unit."""
    nested = OrderedDict()
    for r in results:
        leaf = OrderedDict(kind=r["kind"], bytes=r["bytes"], files=r["files"], runs=r["runs"],
                           verified=r["verified_runs"], status=r["status"])
        if r["status"] == "ok":
            leaf["seconds"] = [r["median_s"], r["min_s"], r["max_s"]]
            leaf["value"] = [r["median"], r["min"], r["max"]]
            leaf["unit"] = r["unit"]
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
    out.append("}}")
    f.write("\n".join(out) + "\n")


def write_chart(results, how, meta, outdir):
    """chart.dat + chart.gp: throughput by size, one line per method."""
    blocks, titles = [], []
    for setting in OrderedDict((r["setting"], 1) for r in results):
        for m in OrderedDict((r["method"], 1) for r in results if r["setting"] == setting):
            pts = [r for r in results if r["setting"] == setting and r["method"] == m
                   and r["kind"] == "file" and r["status"] == "ok"]
            if not pts:
                continue
            pts.sort(key=lambda r: r["bytes"])
            blocks.append("\n".join(f"{r['bytes'] / 2**20:g} {r['median']:.6g} {r['min']:.6g} {r['max']:.6g}"
                                    for r in pts))
            titles.append(m if setting == "host" else f"{m} ({setting})")
    with open(os.path.join(outdir, "chart.dat"), "w", encoding="utf-8") as f:
        f.write("\n\n\n".join(blocks) + "\n")
    plots = ", ".join(
        f"'chart.dat' index {i} using 1:2:3:4 with yerrorlines lw {3 if t == 'nshm' else 2} pt 7 ps 0.8 title '{t}'"
        for i, t in enumerate(titles))
    date = meta.get("date", "")[:10]
    sizes = sorted({r["bytes"] for r in results if r["kind"] == "file"})
    xtics = ", ".join(f"'{human(b)}' {b / 2**20:g}" for b in sizes)
    # libgd's png, not pngcairo: a third of the bytes for the same chart,
    # and the PNG is committed with every full run.
    lo, hi = (sizes[0] / 2**20 / 1.5, sizes[-1] / 2**20 * 1.5) if sizes else (0.5, 2)
    gp = f"""set terminal png size 900,560
set output 'chart.png'
set title "nshm benchmark: throughput by file size (median of {meta.get('runs', '?')}, bars = min..max), {date}"
set logscale xy
set xlabel 'file size'
set xtics ({xtics})
set ylabel 'MB/s (10^6 bytes/s)'
set grid xtics ytics
set key outside right top
set xrange [{lo:g}:{hi:g}]
"""
    gp += f"plot {plots}\n" if plots else "set label 'no data' at graph 0.5,0.5\nplot 1 notitle\n"
    with open(os.path.join(outdir, "chart.gp"), "w", encoding="utf-8") as f:
        f.write(gp)


def results_md(path, table_md, meta):
    m, v = meta["machine"], meta["versions"]
    text = f"""# nshm benchmark results

Latest full run of `bench/run` (regenerated by it; do not edit by hand).

- **Command:** `{meta['command'].strip()}` (`make bench` runs it), {meta['elapsed_s']} s wall time
- **Date:** {meta['date']}
- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}, Linux {m['kernel']}
  (itself a VM: memory touched for the first time is slow, hence the warm-up)
- **Versions:** """ + "; ".join(f"{k}: {val}" for k, val in v.items()) + f"""

{table_md}
![throughput by size](results/chart.png)

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
    a = ap.parse_args()

    with open(a.samples, newline="", encoding="utf-8") as f:
        samples = list(csv.DictReader(f))
    with open(a.meta, encoding="utf-8") as f:
        meta = json.load(f)
    how = load_methods(a.methods)
    results = summarise(samples)
    table_md = table(results, how, meta)

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table_md)
    write_csv(results, os.path.join(a.out, "results.csv"))
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        write_json(f, meta, how, results)
    write_chart(results, how, meta, a.out)
    if a.results_md:
        results_md(a.results_md, table_md, meta)


if __name__ == "__main__":
    main()
