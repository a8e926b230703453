#!/usr/bin/env python3
"""Scrapes vmprobe and prometheus-libvirt-exporter side by side (bench/libvirt.sh).

    exporters.py ROUNDS CONFIG VMPROBE_URL EXPORTER_URL DOMAIN...

Every round scrapes both, in an order that alternates, with each Accept a
Prometheus 2.42 sends (with and without --enable-feature=native-histograms,
gzip either way) and as plain text: scrape time (request to last byte, one
new connection each, as Prometheus scrapes) and bytes as sent. From a plain
text scrape of each, the series of each domain: vmprobe's carry
name="DOMAIN", the exporter's domain="DOMAIN". vmprobe's series as a
native-histogram Prometheus stores them count a histogram once (the
protobuf body has exactly one metric per histogram); classic, every bucket,
_sum and _count. CONFIG names vmprobe's configuration in the BENCH lines.
"""
import gzip
import http.client
import re
import sys
import time
import urllib.parse
from statistics import median

ACCEPT = {
    # Prometheus 2.42's scrape Accept headers (scrape/scrape.go).
    "prom": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "prom_native": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                   "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
                   "application/openmetrics-text;version=0.0.1;q=0.75,"
                   "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "text": "text/plain;version=0.0.4",
}


def scrape(url, style):
    """(seconds, bytes as sent, body decoded) of one GET."""
    u = urllib.parse.urlsplit(url)
    headers = {"Accept": ACCEPT[style],
               "Accept-Encoding": "identity" if style == "text" else "gzip"}
    t0 = time.perf_counter()
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", u.path, headers=headers)
    r = c.getresponse()
    body = r.read()
    secs = time.perf_counter() - t0
    c.close()
    if r.status != 200:
        sys.exit("exporters.py: %s answered %d" % (url, r.status))
    sent = len(body)
    if r.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return secs, sent, body


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? ')


def series(text, label, dom):
    """Series of a domain in a text body: (classic, native) counts and the families."""
    want = '%s="%s"' % (label, dom)
    hist = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.split()[3] == "histogram":
            hist.add(line.split()[2])
    classic = native = 0
    families = set()
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or want not in (m.group(2) or ""):
            continue
        name = m.group(1)
        classic += 1
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base in hist:
            native += name.endswith("_count")
            families.add(base)
        else:
            native += 1
            families.add(name)
    return classic, native, families


def main():
    rounds, config, vm_url, ex_url = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    doms = sys.argv[5:]
    targets = {"vmprobe": vm_url, "exporter": ex_url}
    times = {(t, s): [] for t in targets for s in ACCEPT}
    sent = {}
    for r in range(rounds + 1):  # round 0 warms up
        order = list(targets) if r % 2 else list(reversed(list(targets)))
        for style in ACCEPT:
            for t in order:
                secs, n, _ = scrape(targets[t], style)
                if r:
                    times[(t, style)].append(secs)
                sent[(t, style)] = n
    n = len(doms)
    print("# %s: %d domains, median of %d scrapes each; vmprobe as configured: %s"
          % (config, n, rounds, config))
    for style in ACCEPT:
        for t in targets:
            print("BENCH libvirt_%s_scrape_ms_%s_%s %.2f ms"
                  % (config, t, style, median(times[(t, style)]) * 1e3))
            print("BENCH libvirt_%s_bytes_%s_%s %d bytes" % (config, t, style, sent[(t, style)]))
        ratios = [v / e for v, e in zip(times[("vmprobe", style)], times[("exporter", style)])]
        print("BENCH libvirt_%s_scrape_time_vmprobe_over_exporter_%s %.3f ratio"
              % (config, style, median(ratios)))
        print("BENCH libvirt_%s_bytes_vmprobe_over_exporter_%s %.2f ratio"
              % (config, style, sent[("vmprobe", style)] / sent[("exporter", style)]))
    _, _, vm_text = scrape(vm_url, "text")
    _, _, ex_text = scrape(ex_url, "text")
    vm_text, ex_text = vm_text.decode(), ex_text.decode()
    per = {"classic": [], "native": [], "exporter": []}
    fams = set()
    for d in doms:
        c, nat, f = series(vm_text, "name", d)
        e, _, _ = series(ex_text, "domain", d)
        if not c or not e:
            sys.exit("exporters.py: domain %s: vmprobe has %d series, the exporter %d" % (d, c, e))
        per["classic"].append(c)
        per["native"].append(nat)
        per["exporter"].append(e)
        fams |= f
    ex = median(per["exporter"])
    print("BENCH libvirt_%s_series_per_vm_exporter %g series" % (config, ex))
    for kind in ("classic", "native"):
        v = median(per[kind])
        print("BENCH libvirt_%s_series_per_vm_vmprobe_%s %g series" % (config, kind, v))
        print("BENCH libvirt_%s_series_per_vm_vmprobe_%s_over_exporter %.2f ratio"
              % (config, kind, v / ex))
    hists = sorted(f for f in fams if f.endswith(("_seconds", "_bytes")) and
                   ("%s_bucket{" % f) in vm_text)
    print("# %s: vmprobe's per-VM histograms: %s" % (config, " ".join(hists)))


if __name__ == "__main__":
    main()
