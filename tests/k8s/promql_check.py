#!/usr/bin/env python3
"""Runs every PromQL expression of vmprobe's rules, dashboard and docs
against a live Prometheus (HTTP API) and prints one verdict per check:

    OK<TAB>what            the expression ran and returned what it must
    FAIL<TAB>what<TAB>why
    SKIP<TAB>what<TAB>why  its metric family is not exported by this build

An expression must run without error whatever the data. It must also
return data when every metric family it reads is in the scrape; if one is
not exported yet, the data check is skipped, naming the family.
Recording rules are checked by their recorded series. An alert's
condition is false on a healthy host, so each operand of its top-level
comparisons and and/or/unless (e.g. `p99 > 0.1` -> `p99`) must return data
(a parenthesised operand is split in turn: `(a or b)` -> `a`, `b`).

With NATIVE_PROM=URL (a Prometheus with --enable-feature=native-histograms,
which keeps vmprobe's histograms as native ones and no _bucket series),
the recording rules that read histograms must give data there too, and
the heatmap panels native histograms there and classic buckets on PROM_URL.

Usage: promql_check.py PROM_URL METRICS_FILE[,...] RULES_JSON DASHBOARD_JSON [DOC.md...]
(METRICS_FILE: what Prometheus scraped, saved in the exposition format)
Dashboard variables are replaced by `.*`, or by the value of $VAR_name in
the environment (e.g. VAR_node=e2e-node), which the variable's own query
must then return among its values; $__rate_interval by RATE_INTERVAL (1m).
"""
import json
import os
import re
import sys
import urllib.parse
import urllib.request

prom, metrics_file, rules_file, dash_file = sys.argv[1:5]
docs = sys.argv[5:]
rate_interval = os.environ.get("RATE_INTERVAL", "1m")

# Families present in the scrape: sample names less the histogram suffixes.
exported = {"up"}
for line in (l for f in metrics_file.split(",") for l in open(f, encoding="utf-8")):
    if line and line[0] not in "#\n":
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        exported.add(re.sub(r"_(bucket|sum|count)$", "", name))
        exported.add(name)

rules = json.load(open(rules_file))
records = {}
for g in rules["groups"]:
    for r in g["rules"]:
        if "record" in r:
            records.setdefault(r["record"], []).append(r["expr"])

NAME = re.compile(r"(?<![\w:\"$])([a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_]+)+|vmprobe_[a-z0-9_]+|kubevirt_[a-z0-9_]+|up)(?![\w(])")


def strip_strings(expr):
    """The expression with string contents blanked, same length and positions."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "_" * (len(m.group(0)) - 2) + '"', expr)


def families(expr, seen=None):
    """Metric families an expression reads, recording rules resolved."""
    seen = seen if seen is not None else set()
    out = set()
    for n in NAME.findall(strip_strings(expr)):
        if n in records:
            if n not in seen:
                seen.add(n)
                for e in records[n]:
                    out |= families(e, seen)
        else:
            out.add(re.sub(r"_(bucket|sum|count)$", "", n))
    return out


def query(expr, url=None):
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen((url or prom) + "/api/v1/query", data, timeout=30) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        return None, body.get("error", "unknown error")
    return body["data"]["result"], None


def verdict(status, what, why=""):
    print("\t".join([status, what, why.replace("\n", " ")]))


def short(expr, n=110):
    e = " ".join(expr.split())
    return e if len(e) <= n else e[: n - 3] + "..."


def check(what, expr, want_data=True, label=None, value=None):
    result, err = query(expr)
    if err:
        verdict("FAIL", what, "%s: %s" % (err, short(expr, 300)))
        return
    missing = sorted(f for f in families(expr) if f not in exported)
    if not want_data:
        verdict("OK", what)
    elif missing:
        verdict("SKIP", what + " returns data", "not in the scrape (not exported by this build, or no series yet, as drops before the first drop): " + ", ".join(missing))
    elif not result:
        verdict("FAIL", what + " returns data", "empty result: " + short(expr, 300))
    elif label and not any(label in s["metric"] for s in result):
        verdict("FAIL", what + " returns data", "no series has the label %s: %s" % (label, short(expr, 300)))
    elif value is not None and value not in {s["metric"].get(label) for s in result}:
        verdict("FAIL", what + " returns data", "%s=\"%s\" is not among the values %s: %s" % (
            label, value, sorted({s["metric"].get(label, "") for s in result}), short(expr, 300)))
    else:
        verdict("OK", what + " returns data")


def operands(expr):
    """Top-level operands of comparisons and set operators."""
    s = strip_strings(expr)
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = re.match(r"(>=|<=|==|!=|>|<)|\b(and|or|unless)\b", s[i:])
            if m and (m.group(1) or (i == 0 or not (s[i - 1].isalnum() or s[i - 1] in "_:"))):
                parts.append(expr[start:i])
                i += m.end()
                start = i
                continue
        i += 1
    parts.append(expr[start:])
    out = []
    for p in parts:
        p = re.sub(r"^\s*bool\b", "", p)
        p = re.sub(r"^\s*(on|ignoring)\s*\([^)]*\)", "", p)
        p = re.sub(r"^\s*(group_left|group_right)\s*(\([^)]*\))?", "", p)
        p = p.strip()
        if not p or re.fullmatch(r"[-+0-9.eE]+", p):
            continue
        if wrapped(p):  # (a or b), (x == 0): their own operands
            out += operands(p[1:-1])
        else:
            out.append(p)
    return out


def wrapped(expr):
    """Whether the whole expression is one parenthesised group."""
    s = strip_strings(expr)
    if not (s.startswith("(") and s.endswith(")")):
        return False
    depth = 0
    for i, c in enumerate(s):
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and i < len(s) - 1:
            return False
    return True


# Rules: all of them once more through the API's own health report.
with urllib.request.urlopen(prom + "/api/v1/rules", timeout=30) as r:
    groups = json.load(r)["data"]["groups"]
loaded = [(g["name"], r) for g in groups for r in g["rules"]]
want = sum(len(g["rules"]) for g in rules["groups"])
if len(loaded) != want:
    verdict("FAIL", "Prometheus loaded every rule of the chart", "%d of %d" % (len(loaded), want))
else:
    verdict("OK", "Prometheus loaded every rule of the chart (%d)" % want)
bad = ["%s: %s" % (r.get("name"), r.get("lastError")) for _, r in loaded if r.get("health") != "ok"]
if bad:
    verdict("FAIL", "every rule evaluates without error in Prometheus", "; ".join(bad)[:1500])
else:
    verdict("OK", "every rule evaluates without error in Prometheus")

for g in rules["groups"]:
    for r in g["rules"]:
        if "record" in r:
            q = r.get("labels", {}).get("quantile")
            sel = '%s{quantile="%s"}' % (r["record"], q) if q else r["record"]
            check("rule expression of %s%s" % (r["record"], " (q%s)" % q if q else ""), r["expr"], want_data=False)
            check("recorded %s" % sel, sel)
        else:
            check("alert %s: expression" % r["alert"], r["expr"], want_data=False)
            for k, op in enumerate(operands(r["expr"])):
                check("alert %s: operand %d `%s`" % (r["alert"], k + 1, short(op, 70)), op)

dash = json.load(open(dash_file))


def subst(expr):
    expr = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: os.environ.get("VAR_" + m.group(1), ".*"), expr)


for v in dash["templating"]["list"]:
    if v["type"] != "query":
        continue
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"]["query"])
    if not m:
        verdict("FAIL", "variable %s: a label_values() query" % v["name"], v["query"]["query"])
        continue
    want = os.environ.get("VAR_" + v["name"])
    check("dashboard variable $%s (%s)%s" % (v["name"], short(v["query"]["query"], 70),
                                             ", %s among its values," % want if want else ""),
          subst(m.group(1)), label=m.group(2), value=want)
for p in dash["panels"]:
    for t in p.get("targets", []):
        check("dashboard panel \"%s\" %s" % (p["title"], t["refId"]), subst(t["expr"]))

for doc in docs:
    text = open(doc, encoding="utf-8").read()
    # ```promql blocks must return data; ```promql no-data ones need only run.
    for k, (info, block) in enumerate(re.findall(r"```promql( no-data)?\n(.*?)```", text, re.S)):
        check("%s PromQL block %d `%s`" % (os.path.basename(doc), k + 1, short(block, 60)), block,
              want_data=not info)

native = os.environ.get("NATIVE_PROM")
if native:
    result, err = query('count({__name__=~"vmprobe_.+_bucket"})', native)
    verdict("OK" if not err and not result else "FAIL", "the native-histogram Prometheus keeps no _bucket series",
            err or json.dumps(result)[:300])
    for g in rules["groups"]:
        for r in g["rules"]:
            if "record" in r and re.search(r"\bvmprobe_\w+_(bucket|count)\{", r["expr"]):
                q = r.get("labels", {}).get("quantile")
                sel = '%s{quantile="%s"}' % (r["record"], q) if q else r["record"]
                result, err = query(sel, native)
                verdict("OK" if result else "FAIL", "recorded %s from native histograms" % sel,
                        err or "empty result")
    for p in dash["panels"]:
        if p["type"] != "heatmap":
            continue
        for t in p["targets"]:
            for url, kind, want in ((native, "native", "histogram"), (prom, "classic", "value")):
                result, err = query(subst(t["expr"]), url)
                ok = result and all(want in s_ for s_ in result) and (kind == "native" or all("le" in s_["metric"] for s_ in result))
                verdict("OK" if ok else "FAIL", "heatmap \"%s\" from %s histograms" % (p["title"], kind),
                        err or short(json.dumps(result), 300))
