#!/usr/bin/env python3
"""Summarises an interleaved bench: BENCH lines of medians and paired ratios.

Input (file or stdin), one line per measurement: ROUND CONFIG METRIC VALUE.
Every round measures every config once, in an order that changes from round
to round, so slow drifts of this shared machine hit all configs alike. A
ratio is taken within each round (config / baseline, same round) and the
median of those per-round ratios is reported: pairing cancels the drift
that medians of raw values keep.

    ratios.py FILE PREFIX BASE REF METRIC:UNIT:KIND...

KIND is `more` (throughput: kept = value / base, loss vs REF =
(1 - kept) / (1 - kept_REF)) or `less` (cost per operation: added = value -
base, added vs REF = added / added_REF). Each metric's raw values by round
come first, as `#` lines; then every config gets its BENCH lines. The
spread of its per-round ratios (interquartile range) says how far this
run's noise reaches.
"""
import sys
from statistics import median, quantiles


def quartiles(v):
    if len(v) < 2:
        return v[0], v[0]
    q = quantiles(v, n=4)
    return q[0], q[2]


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    path, prefix, base, ref = argv[1:5]
    metrics = [m.split(":") for m in argv[5:]]
    rows = {}
    configs = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rnd, cfg, metric, value = line.split()
            rows[(int(rnd), cfg, metric)] = float(value)
            if cfg not in configs:
                configs.append(cfg)
    rounds = sorted({r for r, _, _ in rows})
    for metric, unit, kind in metrics:
        per = {c: [rows[(r, c, metric)] for r in rounds if (r, c, metric) in rows] for c in configs}
        for c in configs:
            print(f"#   {metric} by round, {c}: " + " ".join(f"{v:.6g}" for v in per[c]))
        for c in configs:
            print(f"BENCH {prefix}{metric}_{c} {median(per[c]):.6g} {unit}")
        paired = {}
        for c in configs:
            if c == base:
                continue
            ratios = []
            for r in rounds:
                b, v = rows.get((r, base, metric)), rows.get((r, c, metric))
                if b is None or v is None:
                    continue
                ratios.append(v / b if kind == "more" else v - b)
            paired[c] = median(ratios)
            lo, hi = quartiles(ratios)
            what = "kept_ratio" if kind == "more" else "added"
            u = "ratio" if kind == "more" else unit
            print(f"BENCH {prefix}{metric}_{c}_{what} {paired[c]:.4g} {u}")
            print(f"BENCH {prefix}{metric}_{c}_{what}_iqr {hi - lo:.4g} {u}")
        if ref not in paired:
            continue
        for c in paired:
            if c == ref:
                continue
            if kind == "more":
                lost_ref = 1 - paired[ref]
                if lost_ref <= 0:
                    print(f"# {metric}: {ref} lost nothing in this run: no loss ratio for {c}")
                    continue
                print(f"BENCH {prefix}{metric}_loss_{c}_vs_{ref}_ratio "
                      f"{(1 - paired[c]) / lost_ref:.3f} ratio")
            else:
                if paired[ref] <= 0:
                    print(f"# {metric}: {ref} added nothing in this run: no cost ratio for {c}")
                    continue
                print(f"BENCH {prefix}{metric}_added_{c}_vs_{ref}_ratio "
                      f"{paired[c] / paired[ref]:.3f} ratio")


if __name__ == "__main__":
    main(sys.argv)
