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
base, added vs REF = added / added_REF); REF may name several configs,
comma-separated. Each metric's raw values by round
come first, as `#` lines; then every config gets its BENCH lines. The
spread of its per-round ratios (interquartile range) says how far this
run's noise reaches, and a bootstrap over rounds (rounds drawn with
replacement, fixed seed) gives each ratio a 95 % interval (`_ci_lo`,
`_ci_hi`): whether a goal is met or missed beyond this run's noise.
"""
import random
import sys
from statistics import median, quantiles

BOOTSTRAP = 2000


def quartiles(v):
    if len(v) < 2:
        return v[0], v[0]
    q = quantiles(v, n=4)
    return q[0], q[2]


def bootstrap(rounds, stat):
    """The 2.5 and 97.5 percentiles of stat(sample) over resampled rounds."""
    if len(rounds) < 2:
        return float("-inf"), float("inf")  # one round says nothing of the noise
    rng = random.Random(1)
    vals = sorted(stat([rng.choice(rounds) for _ in rounds]) for _ in range(BOOTSTRAP))
    return vals[int(0.025 * BOOTSTRAP)], vals[int(0.975 * BOOTSTRAP) - 1]


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    path, prefix, base, refs = argv[1], argv[2], argv[3], argv[4].split(",")
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
        per = {c: v for c, v in per.items() if v}
        if base not in per:
            print(f"# {metric}: no measurements of {base}")
            continue
        for c in per:
            print(f"#   {metric} by round, {c}: " + " ".join(f"{v:.6g}" for v in per[c]))
        for c in per:
            print(f"BENCH {prefix}{metric}_{c} {median(per[c]):.6g} {unit}")
        paired, by_round = {}, {}
        for c in per:
            if c == base:
                continue
            by_round[c] = {}
            for r in rounds:
                b, v = rows.get((r, base, metric)), rows.get((r, c, metric))
                if b is not None and v is not None:
                    by_round[c][r] = v / b if kind == "more" else v - b
            ratios = list(by_round[c].values())
            paired[c] = median(ratios)
            lo, hi = quartiles(ratios)
            what = "kept_ratio" if kind == "more" else "added"
            u = "ratio" if kind == "more" else unit
            print(f"BENCH {prefix}{metric}_{c}_{what} {paired[c]:.4g} {u}")
            print(f"BENCH {prefix}{metric}_{c}_{what}_iqr {hi - lo:.4g} {u}")
            lo, hi = bootstrap(list(by_round[c]), lambda s, c=c: median(by_round[c][r] for r in s))
            print(f"BENCH {prefix}{metric}_{c}_{what}_ci_lo {lo:.4g} {u}")
            print(f"BENCH {prefix}{metric}_{c}_{what}_ci_hi {hi:.4g} {u}")
        for ref in refs:
            if ref not in paired:
                continue
            for c in paired:
                if c == ref:
                    continue
                common = [r for r in by_round[c] if r in by_round[ref]]
                if kind == "more":
                    def ratio(s, c=c):
                        lost = 1 - median(by_round[ref][r] for r in s)
                        kept = median(by_round[c][r] for r in s)
                        return (1 - kept) / lost if lost > 0 else float("inf")
                    name, none = "loss", f"{ref} lost nothing"
                    ok = 1 - paired[ref] > 0
                else:
                    def ratio(s, c=c):
                        added = median(by_round[ref][r] for r in s)
                        mine = median(by_round[c][r] for r in s)
                        return mine / added if added > 0 else float("inf")
                    name, none = "added", f"{ref} added nothing"
                    ok = paired[ref] > 0
                if not ok:
                    print(f"# {metric}: {none} in this run: no {name} ratio for {c}")
                    continue
                print(f"BENCH {prefix}{metric}_{name}_{c}_vs_{ref}_ratio {ratio(common):.3f} ratio")
                lo, hi = bootstrap(common, ratio)
                print(f"BENCH {prefix}{metric}_{name}_{c}_vs_{ref}_ratio_ci_lo {lo:.3f} ratio")
                print(f"BENCH {prefix}{metric}_{name}_{c}_vs_{ref}_ratio_ci_hi {hi:.3f} ratio")


if __name__ == "__main__":
    main(sys.argv)
