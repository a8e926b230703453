#!/usr/bin/env python3
"""Checks the structure of the chart's Grafana dashboard, offline, and
prints one verdict per check (as promql_check.py):

    OK<TAB>what
    FAIL<TAB>what<TAB>why

Schema version, panel ids and layout, data source, the cluster and node
filters on every selector, variables (defined before use, each query
reading only the ones above it), heatmaps and quantiles that read native
histograms and fall back to classic buckets, data links that set defined
variables from labels the panel's queries keep, and the network- and
guest-path RTT panels side by side. Whether each query runs and each
variable resolves is tests/integration/rules_e2e.sh's (a real Prometheus).

Usage: dashboard_check.py DASHBOARD_JSON
"""
import json
import re
import sys

SCHEMA_VERSION = 39  # Grafana 10.4; later versions migrate it on load
BUILTINS = {"__rate_interval", "__interval", "__range", "__url_time_range", "__field", "__data", "__all"}
HISTOGRAMS = ["vmprobe_network_packet_size_bytes", "vmprobe_network_tcp_rtt_seconds", "vmprobe_disk_latency_seconds",
              "vmprobe_disk_request_size_bytes", "vmprobe_host_block_latency_seconds"]

dash = json.load(open(sys.argv[1]))
panels = dash["panels"]
variables = [v["name"] for v in dash["templating"]["list"]]


def verdict(ok, what, why=""):
    print("\t".join(["OK", what] if ok else ["FAIL", what, str(why).replace("\n", " ")[:1500]]))


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "_" * (len(m.group(0)) - 2) + '"', expr)


def var_refs(text):
    """Variable names referenced as $x, ${x} or ${x:format}."""
    return {m.group(1) or m.group(2) for m in re.finditer(r"\$\{([A-Za-z_]\w*)[^}]*\}|\$([A-Za-z_]\w*)", text)}


def grouping(expr):
    """Labels every `by (...)` of the expression keeps (their intersection)."""
    sets = [set(x.strip() for x in m.split(",")) for m in re.findall(r"\bby \(([^)]*)\)", expr)]
    return set.intersection(*sets) if sets else set()


queried = [p for p in panels if p.get("targets")]

verdict(dash.get("schemaVersion") == SCHEMA_VERSION, "schemaVersion is %d" % SCHEMA_VERSION, dash.get("schemaVersion"))
verdict(bool(dash.get("uid")) and bool(dash.get("title")), "the dashboard has a uid and a title")
ids = [p.get("id") for p in panels]
verdict(len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids),
        "panel ids are unique positive integers", ids)

cells, overlap, outside = {}, [], []
for p in panels:
    g = p["gridPos"]
    if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
        outside.append(p["title"])
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells:
                overlap.append((cells[(x, y)], p["title"]))
            cells[(x, y)] = p["title"]
verdict(not outside, "every panel lies within the 24-column grid", outside)
verdict(not overlap, "no two panels overlap", sorted(set(overlap))[:5])

bad = [p["title"] for p in panels if p["type"] not in ("row", "text") and
       (p.get("datasource", {}).get("uid") != "${datasource}" or not p.get("targets") or
        any(t.get("datasource", {}).get("uid") != "${datasource}" for t in p["targets"]))]
verdict(not bad, "every data panel has queries on the datasource variable", bad)
bad = [p["title"] for p in queried if len({t["refId"] for t in p["targets"]}) != len(p["targets"])]
verdict(not bad, "refIds are unique within each panel", bad)

# Every selector filters by cluster and node (and so does every variable but the first).
missing = []
for p in queried:
    for t in p["targets"]:
        for sel in re.findall(r"\w\{([^{}]*)\}", t["expr"]):
            if 'cluster=~"$cluster"' not in sel or 'node=~"$node"' not in sel:
                missing.append("%s: {%s}" % (p["title"], sel))
verdict(not missing, "every selector of every panel filters by $cluster and $node", missing[:5])

# Variables: defined before use.
for i, v in enumerate(dash["templating"]["list"]):
    if v["type"] != "query":
        continue
    q = v["query"]["query"]
    used = var_refs(q) - BUILTINS
    verdict(used <= set(variables[:i]) and q == v.get("definition"),
            "variable $%s reads only variables above it (%s)" % (v["name"], ", ".join(sorted(used)) or "none"),
            "uses %s; defined before it: %s" % (sorted(used), variables[:i]))
verdict(variables[:7] == ["datasource", "cluster", "node", "namespace", "vm", "interface", "drive"],
        "variables: datasource, cluster, node, namespace, vm, interface, drive", variables)
undefined = sorted({"%s: $%s" % (p["title"], r) for p in panels for r in var_refs(json.dumps(p)) - BUILTINS
                    if r not in variables})
verdict(not undefined, "every variable a panel refers to is defined", undefined)

# Histograms: heatmaps and quantiles from native histograms, else classic buckets.
for fam in HISTOGRAMS:
    heat = [t for p in panels if p["type"] == "heatmap" for t in p["targets"] if fam + "_bucket" in t["expr"]]
    verdict(heat and all(t.get("format") == "heatmap" for t in heat),
            "histogram %s is shown as a heatmap" % fam)
for p in panels:
    if p["type"] != "heatmap":
        continue
    for t in p["targets"]:
        m = re.fullmatch(r"sum\(increase\((\w+)\{([^}]*)\}\[([^]]+)\]\)\) or on \(\) "
                         r"sum by \(le\) \(increase\((\w+)_bucket\{([^}]*)\}\[([^]]+)\]\)\)", t["expr"])
        verdict(m and m.group(1) == m.group(4) and m.group(2) == m.group(5) and m.group(3) == m.group(6),
                "heatmap \"%s\": the native histogram, or on () the classic buckets of the same series" % p["title"],
                t["expr"])
for p in queried:
    for t in p["targets"]:
        s = strip_strings(t["expr"])
        for q, by, fam, sel in re.findall(r"histogram_quantile\(([0-9.]+), sum by \(([^)]*)\) \(rate\((\w+)\{([^}]*)\}", s):
            if fam.endswith("_bucket"):
                continue
            classic = "histogram_quantile(%s, sum by (%s, le) (rate(%s_bucket{%s}" % (q, by, fam, sel)
            verdict(classic in s, "panel \"%s\" %s: p%s of %s from native histograms, or the classic buckets"
                    % (p["title"], t["refId"], q, fam), t["expr"])

# Data links: to this dashboard, setting defined variables from labels the queries keep.
for p in panels:
    links = list(p.get("fieldConfig", {}).get("defaults", {}).get("links", []))
    for o in p.get("fieldConfig", {}).get("overrides", []):
        for prop in o["properties"]:
            if prop["id"] == "links":
                links += prop["value"]
    for link in links:
        url = link["url"]
        kept = set.intersection(*[grouping(t["expr"]) for t in p["targets"]])
        sets = dict(re.findall(r"var-(\w+)=([^&]*)", url))
        refs = set(re.findall(r"\$\{__(?:field\.labels|data\.fields)\.(\w+)\}", url))
        problems = []
        if not url.startswith("/d/%s/" % dash["uid"]):
            problems.append("not this dashboard")
        problems += ["var-%s is no variable" % v for v in sets if v not in variables]
        problems += ["%s is not a label the queries keep (%s)" % (r, sorted(kept)) for r in refs - kept]
        if "${__url_time_range}" not in url or "${cluster:queryparam}" not in url:
            problems.append("drops the time range or the cluster")
        verdict(not problems, "panel \"%s\" link \"%s\" sets %s" % (p["title"], link["title"], ", ".join(sorted(sets))),
                "; ".join(problems))

# Drill-down: node -> VM -> drive and interface.
targets = {v for p in panels for l in [json.dumps(p)] for v in re.findall(r"var-(\w+)=", l)}
verdict({"node", "namespace", "vm", "drive", "interface"} <= targets,
        "links lead to a node, a VM, a drive and an interface", sorted(targets))

# Is it the network or the guest: the two RTT paths side by side.
by_title = {p["title"]: p for p in panels}
net, guest = by_title.get("TCP RTT p99, network path"), by_title.get("TCP RTT p99, guest path")
ok = net and guest and net["gridPos"]["y"] == guest["gridPos"]["y"] and net["gridPos"]["w"] == guest["gridPos"]["w"] \
    and guest["gridPos"]["x"] == net["gridPos"]["x"] + net["gridPos"]["w"] \
    and 'path="network"' in net["targets"][0]["expr"] and 'path="guest"' in guest["targets"][0]["expr"] \
    and net["fieldConfig"]["defaults"]["unit"] == guest["fieldConfig"]["defaults"]["unit"] == "s"
verdict(ok, "network-path and guest-path RTT p99 side by side, same size and unit")
