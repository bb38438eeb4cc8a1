#!/usr/bin/env python3
# tests/bench/bench-table.py — the table of tests/bench/compare and
# compare-cluster: medians per (server, point) of the runs in a results.jsonl
# (one {"server","point","rep","rc","result"} object per line, result being
# pubsub-bench --json), ratios of those medians, targets, and the failed runs.
# Exit status: 0, or 1 if a run saw loss/gaps/duplicates/reordering, 2 if a
# run did not complete. SPDX-License-Identifier: MIT
import argparse
import json
import operator
import statistics
import sys

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("results")
ap.add_argument("servers", nargs="+", help="columns, in this order")
ap.add_argument("--lat-rate", default="100")
ap.add_argument("--window", default="32")
ap.add_argument("--big-size", default="16384")
ap.add_argument("--ratio", action="append", default=[],
                help="A/B: a column of median(A)/median(B) (default: pubsubd/peer for every peer)")
ap.add_argument("--target", action="append", default=[],
                help="'POINT A/B OP VALUE' (OP >= or <=): checked below the table")
ap.add_argument("--note", action="append", default=[], help="a line below the table")
args = ap.parse_args()

servers = args.servers
runs = [json.loads(l) for l in open(args.results) if l.strip()]
points = []
for r in runs:
    if r["point"] not in points:
        points.append(r["point"])


def metric(point, d):
    if point.split("-")[0] in ("pub", "fanout", "big", "topics"):
        return d["events_per_s"]
    if point.startswith("latency-"):
        return d["latency_us"]["p99"]
    return d["rss_per_conn_kib"]


def label(point):
    kind, n = point.split("-", 1)
    if kind == "pub":
        spec, w = n.rsplit("-w", 1)
        p, t = spec.split("x")
        if p == "1" and t == "1":
            return ("publish 1->1 w%s" % w, "events/s")
        return ("publish %sx%s->1 w%s" % (p, t, w), "events/s")
    if kind == "big":
        return ("%d KiB x %s subs" % (int(args.big_size) // 1024, n), "events/s")
    if kind == "topics":
        subs, topics, pubs = n.split("-")
        return ("%s subs/%s topics/%s pubs" % (subs, topics, pubs), "events/s")
    if kind == "fanout":
        return ("fan-out %s sub%s" % (n, "" if n == "1" else "s"), "events/s")
    if kind == "latency":
        return ("p99 %s subs @%s/s" % (n, args.lat_rate), "us")
    return ("idle %s conns" % n, "KiB/conn")


failures, table, tool_max = [], {}, {}
for r in runs:
    d, s, p = r["result"], r["server"], r["point"]
    if r["rc"] != 0 or not d:
        detail = ""
        if d:
            detail = " (lost %s, gaps %s, dups %s, reordered %s, disconnected %s)" % (
                d.get("lost"), d.get("gaps"), d.get("duplicates"), d.get("out_of_order"),
                d.get("disconnected"))
            lossy = ["%s: %s" % (n["url"], n["lost"]) for n in d.get("sub_nodes", []) if n["lost"]]
            if lossy:
                detail += " lost per node: " + ", ".join(lossy)
        failures.append("%s %s round %d: exit %d%s" % (s, p, r["rep"], r["rc"], detail))
    if d and r["rc"] in (0, 1):
        table.setdefault((s, p), []).append(metric(p, d))
        if "tool_cpu_pct" in d and not p.startswith("idle"):
            tool_max[s] = max(tool_max.get(s, 0), d["tool_cpu_pct"])


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f" % v
    return "%.2f" % v


ratios = [tuple(x.split("/", 1)) for x in args.ratio]
if not ratios and "pubsubd" in servers:
    ratios = [("pubsubd", s) for s in servers if s != "pubsubd"]
medians = {}
for (s, p), vals in table.items():
    medians[(s, p)] = statistics.median(vals)


def ratio(p, a, b):
    x, y = medians.get((a, p)), medians.get((b, p))
    return x / y if x is not None and y else None


cols = ["point", "unit"] + servers + ["%s/%s" % r for r in ratios]
rows = []
for p in points:
    name, unit = label(p)
    row = [name, unit]
    for s in servers:
        m = medians.get((s, p))
        row.append(fmt(m) + ("" if m is None or len(table[(s, p)]) > 1 else "*"))
    for a, b in ratios:
        v = ratio(p, a, b)
        row.append("%.2f" % v if v is not None else "-")
    rows.append(row)
rows.append(["tool cpu max", "% core"] + [fmt(tool_max.get(s)) for s in servers] + [""] * len(ratios))

w = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
line = lambda r: "  ".join(str(x).rjust(w[i]) if i > 1 else str(x).ljust(w[i]) for i, x in enumerate(r))
print()
print(line(cols))
print(line(["-" * x for x in w]))
for r in rows:
    print(line(r))
print()
print("medians of %s; * = a single run. events/s: higher is better; p99 and KiB/conn: lower is better." %
      ("runs" if runs else "nothing"))
for n in args.note:
    print(n)
print("ratios are of those medians. raw results: %s" % args.results)

ops = {">=": operator.ge, "<=": operator.le}
if args.target:
    print()
    print("targets:")
for t in args.target:
    point, pair, op, value = t.split()
    a, b = pair.split("/", 1)
    v = ratio(point, a, b)
    verdict = "no data" if v is None else ("met" if ops[op](v, float(value)) else "NOT MET")
    print("  %-22s %s %s %s: %s  %s" % (label(point)[0], pair, op, value,
                                        "-" if v is None else "%.2f" % v, verdict))
if failures:
    print()
    print("FAILED runs:")
    for f in failures:
        print("  " + f)
    sys.exit(2 if any(r["rc"] not in (0, 1) for r in runs) else 1)
