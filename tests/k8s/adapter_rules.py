#!/usr/bin/env python3
"""Prometheus Adapter custom-metrics rules, expanded as the adapter does.

The adapter itself (sigs.k8s.io/prometheus-adapter) is neither a Debian nor
an npm package, so the tests run its rules through this model of what it
does with them (read from its pkg/config, pkg/naming and
pkg/custom-provider, v0.12):

- config: `rules:` entries with only the keys the adapter knows (it parses
  strictly); resources by `overrides` (label -> group/resource); the
  resource `template` form is refused here, not modelled.
- discovery: every rule's seriesQuery goes to /api/v1/series; a series
  whose name fails name.matches (or a seriesFilter) is dropped; each
  label named in overrides registers the metric for that resource, named
  by name.as ($0, $1, ${name} as Go's Regexp.Expand; default $0 with no
  group, $1 with one); where two rules register the same (resource,
  metric), the later one wins.
- query: metricsQuery is a Go template with `<<` `>>` delimiters. Only
  field actions are modelled (<<.Series>>, <<.LabelMatchers>>,
  <<.GroupBy>>, <<.LabelValuesByName.LABEL>>); anything else is an error
  rather than a guess. LabelMatchers is the metric selector's
  requirements (sorted by key), then namespace="NS" (if a namespace is given: none for
  a namespace itself), then
  the resource's label: LABEL="NAME" for one object, LABEL=~"A|B" for
  several; values quoted as Go's %q. GroupBy is the resource's label.
  The result is an instant query at one time; an object's value is the
  sample whose resource label is its name.

Usage:
  adapter_rules.py check CONFIG.json
  adapter_rules.py parse CONFIG.json          a promtool rule file of every
                                              rule's queries (syntax check)
  adapter_rules.py discover CONFIG.json PROM  "resource metric series" lines
  adapter_rules.py query CONFIG.json PROM TIME RESOURCE NAMESPACE METRIC \
        NAME[,NAME...] [LABEL=VALUE,...]      the query, then "name value"
  adapter_rules.py selftest                   the model against cases of the
                                              adapter's own unit tests
CONFIG.json: the adapter's config.yaml as JSON. Errors go to stderr with
the rule's index, exit status 1.
"""
import json
import re
import sys
import urllib.parse
import urllib.request

RULE_KEYS = {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}
TOP_KEYS = {"rules", "resourceRules", "externalRules"}
# What the adapter's RESTMapper makes of the singular names used here.
PLURAL = {("", "namespace"): "namespaces", ("", "pod"): "pods", ("", "node"): "nodes",
          ("kubevirt.io", "virtualmachineinstance"): "virtualmachineinstances",
          ("kubevirt.io", "virtualmachine"): "virtualmachines"}


class ConfigError(Exception):
    pass


def keys_only(where, obj, allowed):
    if not isinstance(obj, dict):
        raise ConfigError("%s: expected a mapping, got %r" % (where, obj))
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ConfigError("%s: unknown field %r" % (where, extra[0]))


def resource_name(where, gr):
    keys_only(where, gr, {"group", "resource"})
    group, res = gr.get("group", ""), gr.get("resource", "")
    if not res:
        raise ConfigError("%s: no resource" % where)
    plural = PLURAL.get((group, res))
    if plural is None and (group, res) in {(g, p) for (g, _), p in PLURAL.items()}:
        plural = res
    if plural is None:
        raise ConfigError("%s: unknown resource %s%s" % (where, res, "." + group if group else ""))
    return plural + ("." + group if group else "")


TEMPLATE_ACTION = re.compile(r"<<(.*?)>>", re.S)


def template_fields(where, text):
    """The field paths of a metricsQuery template; errors on anything else."""
    if text.count("<<") != text.count(">>"):
        raise ConfigError("%s: unbalanced << >> in %r" % (where, text))
    fields = []
    for m in TEMPLATE_ACTION.finditer(text):
        action = m.group(1)
        if not re.fullmatch(r"\.(Series|LabelMatchers|GroupBy|LabelValuesByName\.[A-Za-z_][A-Za-z0-9_]*)",
                            action):
            raise ConfigError("%s: template action <<%s>> is not modelled" % (where, action))
        fields.append(action[1:])
    return fields


def expand_template(text, args):
    def one(m):
        path = m.group(1)[1:].split(".")
        v = args[path[0]]
        if len(path) == 2:
            # Go's text/template prints a missing map key as <no value>.
            v = v.get(path[1], "<no value>")
        return v
    return TEMPLATE_ACTION.sub(one, text)


def expand_as(pattern, as_, name):
    """Go's Regexp.ExpandString of as_ for name (pattern already matched)."""
    m = pattern.search(name)
    out, i = [], 0
    while i < len(as_):
        c = as_[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if as_[i + 1:i + 2] == "$":
            out.append("$")
            i += 2
            continue
        br = re.match(r"\{([A-Za-z0-9_]+)\}", as_[i + 1:])
        ident = br or re.match(r"[A-Za-z0-9_]+", as_[i + 1:])
        if not ident:
            out.append("$")
            i += 1
            continue
        key = ident.group(1) if br else ident.group(0)
        i += 1 + len(ident.group(0))
        if key.isdigit():
            g = int(key)
            out.append(m.group(g) or "" if g <= pattern.groups else "")
        else:
            out.append(m.group(key) or "" if key in pattern.groupindex else "")
    return "".join(out)


def load(path):
    cfg = json.load(open(path))
    if isinstance(cfg, list):
        if len(cfg) != 1:
            raise ConfigError("expected one YAML document, found %d" % len(cfg))
        cfg = cfg[0]
    keys_only("config", cfg, TOP_KEYS)
    rules = []
    for i, r in enumerate(cfg.get("rules") or []):
        where = "rules[%d]" % i
        keys_only(where, r, RULE_KEYS)
        if not r.get("seriesQuery"):
            raise ConfigError("%s: no seriesQuery" % where)
        res = r.get("resources") or {}
        keys_only(where + ".resources", res, {"template", "overrides", "namespaced"})
        if res.get("template"):
            raise ConfigError("%s.resources.template is not modelled (use overrides)" % where)
        overrides = {lbl: resource_name("%s.resources.overrides.%s" % (where, lbl), gr)
                     for lbl, gr in (res.get("overrides") or {}).items()}
        if not overrides:
            raise ConfigError("%s: no resources" % where)
        name = r.get("name") or {}
        keys_only(where + ".name", name, {"matches", "as"})
        try:
            pattern = re.compile(name.get("matches") or ".*")
        except re.error as e:
            raise ConfigError("%s.name.matches: %s" % (where, e))
        as_ = name.get("as") or ""
        if not as_:
            if pattern.groups > 1:
                raise ConfigError("%s: must specify an 'as' value for name matcher %r" % (where, pattern.pattern))
            as_ = "$0" if pattern.groups == 0 else "$1"
        filters = []
        for j, f in enumerate(r.get("seriesFilters") or []):
            keys_only("%s.seriesFilters[%d]" % (where, j), f, {"is", "isNot"})
            if bool(f.get("is")) == bool(f.get("isNot")):
                raise ConfigError("%s.seriesFilters[%d]: exactly one of is, isNot" % (where, j))
            filters.append((re.compile(f.get("is") or f["isNot"]), bool(f.get("is"))))
        filters.append((pattern, True))
        query = r.get("metricsQuery") or ""
        if not query:
            raise ConfigError("%s: no metricsQuery" % where)
        template_fields(where + ".metricsQuery", query)
        rules.append({"series_query": r["seriesQuery"], "overrides": overrides, "pattern": pattern,
                      "as": as_, "filters": filters, "query": query, "index": i})
    if not rules:
        raise ConfigError("config: no rules")
    return rules


def prom_get(prom, path, params):
    url = "%s%s?%s" % (prom, path, urllib.parse.urlencode(params, doseq=True))
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (url, body))
    return body["data"]


def discover(rules, prom):
    """(resource, metric) -> (series name, rule), later rules winning."""
    registry, cache = {}, {}
    for r in rules:
        q = r["series_query"]
        if q not in cache:
            # The adapter asks for the series of the last --metrics-max-age.
            cache[q] = prom_get(prom, "/api/v1/series", {"match[]": q})
        for s in cache[q]:
            name = s["__name__"]
            if not all(bool(rx.search(name)) == pos for rx, pos in r["filters"]):
                continue
            metric = expand_as(r["pattern"], r["as"], name)
            for lbl in s:
                if lbl in r["overrides"]:
                    registry[(r["overrides"][lbl], metric)] = (name, r)
    return registry


def go_quote(v):
    if not all(0x20 <= ord(c) < 0x7f for c in v):
        raise ValueError("only printable ASCII is modelled: %r" % v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build(rule, series, resource, namespace, names, selector):
    label_of = {res: lbl for lbl, res in rule["overrides"].items()}
    if resource not in label_of:
        raise ValueError("the rule maps no label to %s" % resource)
    exprs, by_name = [], {}
    for k in sorted(selector):
        exprs.append("%s=%s" % (k, go_quote(selector[k])))
        by_name[k] = selector[k]
    if namespace:
        if "namespaces" not in label_of:
            raise ValueError("the rule maps no label to namespaces")
        exprs.append("%s=%s" % (label_of["namespaces"], go_quote(namespace)))
        by_name[label_of["namespaces"]] = namespace
    lbl = label_of[resource]
    target = "|".join(names)
    exprs.append("%s%s%s" % (lbl, "=~" if len(names) > 1 else "=", go_quote(target)))
    by_name[lbl] = target
    return expand_template(rule["query"], {"Series": series, "LabelMatchers": ",".join(exprs),
                                           "GroupBy": lbl, "LabelValuesByName": by_name}), lbl


def selftest():
    """Expected outputs from the adapter's pkg/naming tests; "ok"/"FAIL" lines."""
    rule = {"overrides": {"resource": "resource.group", "namespace": "namespaces"}}
    cases = [
        ("<<.LabelMatchers>>", "", ["bar", "baz"], {}, 'resource=~"bar|baz"'),
        ("<<.LabelMatchers>>", "", ["bar"], {}, 'resource="bar"'),
        ("<<.LabelMatchers>>", "", ["bar"], {"metric1": "value1"}, 'metric1="value1",resource="bar"'),
        ("<<.LabelMatchers>>", "default", ["bar"], {"b": "2", "a": "1"},
         'a="1",b="2",namespace="default",resource="bar"'),
        ("<<.LabelValuesByName.resource>>", "", ["bar", "baz"], {}, "bar|baz"),
        ("<<.LabelValuesByName.namespace>> <<.LabelValuesByName.resource>>", "default", ["bar", "baz"], {},
         "default bar|baz"),
        ("<<.GroupBy>>", "", ["bar"], {}, "resource"),
        ("series <<.Series>>", "", ["bar"], {}, "series foo"),
        ("<<.LabelMatchers>>", "", ['a"b\\c'], {}, 'resource="a\\"b\\\\c"'),
    ]
    bad = 0
    for tmpl, ns, names, sel, want in cases:
        got, _ = build(dict(rule, query=tmpl), "foo", "resource.group", ns, names, sel)
        bad += got != want
        print("%s query %r %r %r %r -> %r (want %r)" % ("ok" if got == want else "FAIL", tmpl, ns, names, sel, got, want))
    names = [("^container_(.*)_seconds_total$", "$1", "container_cpu_usage_seconds_total", "cpu_usage"),
             ("^(.*)_total$", "${1}_per_second", "http_requests_total", "http_requests_per_second"),
             ("^(.*)_total$", "$1x", "http_requests_total", ""),
             ("^(?P<base>.*)_total$", "$base", "http_requests_total", "http_requests"),
             ("^kube_pod_info$", "$0", "kube_pod_info", "kube_pod_info"),
             ("^x$", "a$$b", "x", "a$b")]
    for pat, as_, name, want in names:
        got = expand_as(re.compile(pat), as_, name)
        bad += got != want
        print("%s as %r %r %r -> %r (want %r)" % ("ok" if got == want else "FAIL", pat, as_, name, got, want))
    return bad


def main(argv):
    if len(argv) == 2 and argv[1] == "selftest":
        sys.exit(1 if selftest() else 0)
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, rules = argv[1], load(argv[2])
    if cmd == "check":
        for r in rules:
            print("rule %d: %s -> %s (%s)" % (r["index"], r["series_query"], r["as"],
                                             ", ".join(sorted(r["overrides"].values()))))
    elif cmd == "parse":
        # Every query with the arguments of a one-object lookup, as rules
        # promtool can check; the record name says which rule it came from.
        out = []
        for r in rules:
            for res in sorted(set(r["overrides"].values())):
                ns = "" if res == "namespaces" else "ns"
                q, _ = build(r, r["pattern"].pattern.strip("^$") or "x", res, ns, ["obj"], {})
                out.append({"record": "rule_%d_%s" % (r["index"], res.replace(".", "_")), "expr": q})
            out.append({"record": "rule_%d_series" % r["index"], "expr": r["series_query"]})
        json.dump({"groups": [{"name": "adapter", "rules": out}]}, sys.stdout, indent=1)
    elif cmd == "discover":
        for (res, metric), (series, r) in sorted(discover(rules, argv[3]).items()):
            print(res, metric, series, r["index"])
    elif cmd == "query":
        prom, when, resource, namespace, metric, names = argv[3:9]
        selector = dict(kv.split("=", 1) for kv in argv[9].split(",")) if len(argv) > 9 and argv[9] else {}
        found = discover(rules, prom).get((resource, metric))
        if not found:
            sys.exit("%s of %s is not registered" % (metric, resource))
        series, rule = found
        query, lbl = build(rule, series, resource, namespace, names.split(","), selector)
        print(query)
        data = prom_get(prom, "/api/v1/query", {"query": query, "time": when})
        if data["resultType"] != "vector":
            sys.exit("expected a vector, got %s" % data["resultType"])
        for s in data["result"]:
            print(s["metric"].get(lbl, ""), s["value"][1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except ConfigError as e:
        sys.exit("adapter config: %s" % e)
