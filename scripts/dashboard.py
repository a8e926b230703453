#!/usr/bin/env python3
"""Writes the chart's Grafana dashboard, helm/vmprobe/dashboards/vmprobe.json
(tests/integration/helm_chart.sh checks that the file is this script's
output). Usage: scripts/dashboard.py [OUT] (default: that file).

Variables: datasource, cluster, node, namespace, vm, interface, drive; every
query filters by the ones above it, and tables and per-node series link to
the same dashboard narrowed to the node, VM, interface or drive they show.
Heatmaps and quantiles read native histograms where Prometheus stores them
(--enable-feature=native-histograms keeps no _bucket series) and the
classic buckets otherwise.
"""
import json
import os
import sys

UID = "vmprobe-vms"
DS = {"type": "prometheus", "uid": "${datasource}"}
HOST = 'cluster=~"$cluster", node=~"$node"'
VM = HOST + ', namespace=~"$namespace", name=~"$vm"'
IFACE = VM + ', interface=~"$interface"'
DRIVE = VM + ', drive=~"$drive"'
RATE = "$__rate_interval"
WHO = "{{namespace}}/{{name}}"


def rate(metric, sel, fn="rate"):
    return "%s(%s{%s}[%s])" % (fn, metric, sel, RATE)


def summed(metric, sel, by, fn="rate"):
    return "sum by (%s) (%s)" % (by, rate(metric, sel, fn))


def hist_summed(part, metric, sel, by):
    """Per-second rate of a histogram's count or sum (PART), summed by BY: from native histograms or else the
    classic _count or _sum series (vmprobe sends no separate counters for them by default)."""
    return "sum by (%s) (histogram_%s(%s)) or sum by (%s) (%s)" % (
        by, part, rate(metric, sel), by, rate("%s_%s" % (metric, part), sel))


def quantile(q, metric, sel, by):
    """q-quantile by BY, from native histograms or else classic buckets."""
    return "histogram_quantile(%s, sum by (%s) (%s)) or histogram_quantile(%s, sum by (%s, le) (%s))" % (
        q, by, rate(metric, sel), q, by, rate(metric + "_bucket", sel))


def heatmap_expr(metric, sel):
    """Observations per interval: the native histogram if there is one, else the classic buckets."""
    return "sum(%s) or on () sum by (le) (%s)" % (rate(metric, sel, "increase"), rate(metric + "_bucket", sel, "increase"))


def link(title, **vars_):
    """A data link to this dashboard, keeping the time range, data source
    and cluster, setting each var-NAME to a field reference."""
    q = "".join("&var-%s=%s" % kv for kv in vars_.items())
    return {"title": title, "url": "/d/%s/vmprobe?${__url_time_range}&${datasource:queryparam}&${cluster:queryparam}%s" % (UID, q)}


def target(expr, legend=None, ref="A", **extra):
    t = {"datasource": DS, "refId": ref, "expr": expr}
    if legend is not None:
        t["legendFormat"] = legend
    t.update(extra or {"range": True})
    return t


def timeseries(title, desc, targets, unit, links=None, thresholds=None):
    fc = {"unit": unit, "custom": {"fillOpacity": 10, "showPoints": "never"}}
    if links:
        fc["links"] = links
    if thresholds:
        fc["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}] +
                            [{"color": c, "value": v} for v, c in thresholds]}
        fc["custom"]["thresholdsStyle"] = {"mode": "line+area"}
    return {"type": "timeseries", "title": title, "description": desc, "datasource": DS,
            "fieldConfig": {"defaults": fc, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(targets)]}


def hist_rates(title, desc, part, metric, sel, by, legend, unit, scale=""):
    """Per-second rate of a histogram's count or sum, summed by BY."""
    expr = hist_summed(part, metric, sel, by)
    return timeseries(title, desc, [("(%s)%s" % (expr, scale) if scale else expr, legend)], unit)


def p50_p99(title, desc, metric, sel, by, legend, unit):
    return timeseries(title, desc, [(quantile(q, metric, sel, by), "%s p%s" % (legend, p))
                                    for q, p in (("0.5", "50"), ("0.99", "99"))], unit)


def heatmap(title, desc, metric, sel, unit):
    return {"type": "heatmap", "title": title, "description": desc, "datasource": DS,
            "options": {"calculate": False, "cellGap": 1,
                        "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "steps": 64},
                        "yAxis": {"axisPlacement": "left", "unit": unit}, "rowsFrame": {"layout": "le"},
                        "tooltip": {"show": True, "yHistogram": True}, "legend": {"show": True},
                        "filterValues": {"le": 1e-09}},
            "targets": [target(heatmap_expr(metric, sel), "{{le}}", format="heatmap", range=True)]}


def table(title, desc, expr, links):
    return {"type": "table", "title": title, "description": desc, "datasource": DS,
            "fieldConfig": {"defaults": {}, "overrides": [
                {"matcher": {"id": "byName", "options": field}, "properties": [{"id": "links", "value": [l]}]}
                for field, l in links]},
            "targets": [target(expr, format="table", instant=True, range=False)],
            "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}]}


def text(title, content):
    return {"type": "text", "title": title, "options": {"mode": "markdown", "content": content}}


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


NODE_LINK = [link("Node ${__field.labels.node}", node="${__field.labels.node}")]
VM_BY = "namespace, name"


def where():
    """Is it the network, the disk or the guest? The selected VMs' paths side by side."""
    rtt = "vmprobe_network_tcp_rtt_seconds"
    lat = "vmprobe_disk_latency_seconds"
    return [
        row("Is it the network, the disk or the guest? (the selected VMs)"),
        (text("How to read this row", "\n".join([
            "TCP round trips seen on each VM's tap are split where the tap is: the **network path** runs from a segment "
            "leaving the guest to the peer's answer coming back (the network beyond the host and the peer); the **guest "
            "path** from a segment delivered to the guest to the guest's answer (its vCPUs, its network stack, its "
            "application).",
            "",
            "- Network path up, guest path flat: the network or the peers.",
            "- Guest path up: the guest itself; compare its vCPU wait (`kubevirt_vmi_vcpu_wait_seconds_total`).",
            "- Drive latency up together with the host's block devices: the storage. Drive latency up alone: that VM's "
            "own load (request sizes, queue) or its backend (rbd, iSCSI).",
            "- Drops on `rx` with reason `FULL_RING`: the guest does not drain its queue (starved vCPUs).",
            "",
            "The deviation panel needs the chart's PrometheusRule (per-VM baselines by hour of day).",
        ])), 24, 5),
        (timeseries("TCP RTT p99, network path", "Out of the guest to the peer's answer at the tap "
                    "(vmprobe_network_tcp_rtt_seconds{path=\"network\"}): the network beyond the host, and the peer.",
                    [(quantile("0.99", rtt, IFACE + ', path="network"', VM_BY + ", interface"), WHO + " {{interface}}")],
                    "s"), 8, 8),
        (timeseries("TCP RTT p99, guest path", "Into the guest to the guest's answer at the tap "
                    "(vmprobe_network_tcp_rtt_seconds{path=\"guest\"}): the guest's own time, no network in it.",
                    [(quantile("0.99", rtt, IFACE + ', path="guest"', VM_BY + ", interface"), WHO + " {{interface}}")],
                    "s"), 8, 8),
        (timeseries("Drive latency p99", "Host-side latency of the VMs' drive requests, issue to completion "
                    "(vmprobe_disk_latency_seconds).",
                    [(quantile("0.99", lat, DRIVE, VM_BY + ", drive, operation"), WHO + " {{drive}} {{operation}}")],
                    "s"), 8, 8),
        (timeseries("Host block device latency p99", "The nodes' own block devices, all IO "
                    "(vmprobe_host_block_latency_seconds): slow here too means the storage, not one VM.",
                    [(quantile("0.99", "vmprobe_host_block_latency_seconds", HOST, "node, device"), "{{node}} {{device}}")],
                    "s", NODE_LINK), 8, 8),
        (timeseries("Drops and retransmits", "Frames the host dropped on the way to (rx) or from (tx) each VM, by "
                    "kernel drop reason, and TCP segments retransmitted through its tap.",
                    [(summed("vmprobe_network_drops_total", IFACE, "namespace, name, interface, direction, reason"),
                      WHO + " {{interface}} {{direction}} drop {{reason}}"),
                     (summed("vmprobe_network_tcp_retransmits_total", IFACE, "namespace, name, interface, direction"),
                      WHO + " {{interface}} {{direction}} retransmits")], "pps"), 8, 8),
        (timeseries("Deviation from the VM's usual at this hour (z-score)", "How many standard deviations each VM's "
                    "p99 RTT (per path), p99 drive latency and drop ratio are from their mean at this hour of day over "
                    "the last days (the chart's baseline recording rules; none for a VM younger than baseline.minDays). "
                    "Above 3: the anomaly alerts' default.",
                    [("max by (namespace, name, interface, path) (vm_interface:vmprobe_network_tcp_rtt_seconds:p99_zscore{%s})" % IFACE,
                      WHO + " {{interface}} RTT {{path}}"),
                     ("max by (namespace, name, drive, operation) (vm_drive:vmprobe_disk_latency_seconds:p99_zscore{%s})" % DRIVE,
                      WHO + " {{drive}} {{operation}} latency"),
                     ("max by (namespace, name, interface, direction) (vm_interface:vmprobe_network_drops:ratio_zscore{%s})" % IFACE,
                      WHO + " {{interface}} {{direction}} drops")], "none", thresholds=[(3, "red")]), 8, 8),
    ]


def hosts():
    return [
        row("Hosts"),
        (timeseries("VMs per node", "QEMU processes vmprobe found on each node (vmprobe_vm_info); a series links to its node.",
                    [("count by (node) (vmprobe_vm_info{%s})" % HOST, "{{node}}")], "short", NODE_LINK), 12, 8),
        (timeseries("Taps counted and slots", "Taps vmprobe counts and how many it can (network.max_interfaces).",
                    [("sum by (node) (vmprobe_network_interfaces{%s})" % HOST, "{{node}} counted"),
                     ("sum by (node) (vmprobe_network_interface_slots{%s})" % HOST, "{{node}} slots")], "short", NODE_LINK), 12, 8),
        (timeseries("VM network traffic per node", "Bits per second through the VMs' taps on each node, by direction "
                    "(rx: into the guests).",
                    [("(%s) * 8" % hist_summed("sum", "vmprobe_network_packet_size_bytes", HOST, "node, direction"),
                      "{{node}} {{direction}}")],
                    "bps", NODE_LINK), 12, 8),
        (timeseries("VM disk requests per node", "Requests QEMU issued for the VMs' drives on each node, by operation.",
                    [(hist_summed("count", "vmprobe_disk_latency_seconds", HOST, "node, operation"), "{{node}} {{operation}}")],
                    "reqps", NODE_LINK), 12, 8),
        (heatmap("Host block device latency", "Every block request on the selected nodes' devices, issue to completion "
                 "(vmprobe_host_block_latency_seconds).", "vmprobe_host_block_latency_seconds", HOST, "s"), 12, 8),
        (timeseries("vmprobe attach errors and unattributed frames", "Should stay at 0: failures to count a VM's tap, "
                    "drive or sockets; frames on devices with no slot; disk requests seen but not measured.",
                    [(summed("vmprobe_attach_errors_total", HOST, "node", "increase"), "{{node}} attach errors"),
                     (summed("vmprobe_network_unknown_interface_frames_total", HOST, "node", "increase"),
                      "{{node}} unknown-interface frames"),
                     (summed("vmprobe_disk_unmeasured_requests_total", HOST, "node, reason", "increase"),
                      "{{node}} unmeasured disk requests ({{reason}})")], "short", NODE_LINK), 12, 8),
        (timeseries("vmprobe scrape and scan time", "Time vmprobe took to render the last scrape, and its last /proc scan.",
                    [("max by (node) (vmprobe_scrape_duration_seconds{%s})" % HOST, "{{node}} scrape"),
                     ("max by (node) (vmprobe_discovery_scan_duration_seconds{%s})" % HOST, "{{node}} /proc scan")],
                    "s", NODE_LINK), 24, 8),
    ]


def network():
    size = "vmprobe_network_packet_size_bytes"
    rtt = "vmprobe_network_tcp_rtt_seconds"
    by = VM_BY + ", interface, direction"
    return [
        row("Virtual machines: network (interface $interface)"),
        (hist_rates("Network traffic per VM", "Bits per second through each VM's taps (rx: into the guest), Ethernet "
                    "headers included.", "sum", size, IFACE, by, WHO + " {{interface}} {{direction}}", "bps", " * 8"), 12, 8),
        (hist_rates("Frames per VM", "Frames per second through each VM's taps.", "count", size, IFACE, by,
                    WHO + " {{interface}} {{direction}}", "pps"), 12, 8),
        (heatmap("Frame sizes", "Sizes of the frames through the selected VMs' taps.", size, IFACE, "bytes"), 12, 8),
        (p50_p99("Frame size p50 and p99", "Per VM, interface and direction.", size, IFACE, by,
                 WHO + " {{interface}} {{direction}}", "bytes"), 12, 8),
        (heatmap("TCP RTT, network path", "Out of the guest to the peer's answer at the tap.", rtt, IFACE + ', path="network"', "s"), 12, 8),
        (heatmap("TCP RTT, guest path", "Into the guest to the guest's answer at the tap.", rtt, IFACE + ', path="guest"', "s"), 12, 8),
        (p50_p99("TCP RTT p50 and p99 per path", "Per VM, interface and path (network, guest).", rtt, IFACE,
                 VM_BY + ", interface, path", WHO + " {{interface}} {{path}}", "s"), 12, 8),
        (timeseries("TCP connections, resets", "Handshakes completed through each VM's taps by the side that opened "
                    "them, and segments with RST.",
                    [(summed("vmprobe_network_tcp_connections_opened_total", IFACE, "namespace, name, interface, opened_by"),
                      WHO + " {{interface}} opened by {{opened_by}}"),
                     (summed("vmprobe_network_tcp_resets_total", IFACE, "namespace, name, interface, direction"),
                      WHO + " {{interface}} {{direction}} resets")], "ops"), 12, 8),
    ]


def disk():
    lat = "vmprobe_disk_latency_seconds"
    by = VM_BY + ", drive, operation"
    return [
        row("Virtual machines: disk (drive $drive)"),
        (hist_rates("Disk requests per drive", "Reads, writes, flushes and discards QEMU issued for each drive.",
                    "count", lat, DRIVE, by, WHO + " {{drive}} {{operation}}", "reqps"), 12, 8),
        (hist_rates("Disk throughput per drive", "Bytes of those requests.", "sum", "vmprobe_disk_request_size_bytes",
                    DRIVE, by, WHO + " {{drive}} {{operation}}", "Bps"), 12, 8),
        (heatmap("Disk latency", "Host-side latency of the selected drives' requests, issue to completion.", lat, DRIVE, "s"), 12, 8),
        (p50_p99("Disk latency p50 and p99 per drive", "Per VM, drive and operation.", lat, DRIVE, by,
                 WHO + " {{drive}} {{operation}}", "s"), 12, 8),
        (heatmap("Disk request sizes", "Sizes of the selected drives' requests.", "vmprobe_disk_request_size_bytes", DRIVE, "bytes"), 24, 8),
    ]


def inventory():
    node = ("node", link("Node ${__data.fields.node}", node="${__data.fields.node}"))
    vm = ("name", link("VM ${__data.fields.namespace}/${__data.fields.name}", node="${__data.fields.node}",
                       namespace="${__data.fields.namespace}", vm="${__data.fields.name}"))
    return [
        row("Inventory"),
        (table("VMs", "Every VM vmprobe found: a node links to it, a name to the VM.",
               "max by (node, namespace, name, uuid, pid) (vmprobe_vm_info{%s})" % VM, [node, vm]), 24, 8),
        (table("Drives", "Every drive of the VMs: its backend (file, host_device, rbd, iscsi, nbd, ...), where vmprobe "
               "learned it (command line, libvirt's live state, QEMU's fds) and whether vmprobe measures it; when not, why "
               "(measured=false: its IO is missing from the disk panels, not zero). A drive links to its panels.",
               "max by (node, namespace, name, drive, backend, source, measured, reason) (vmprobe_drive_info{%s})" % DRIVE,
               [node, vm, ("drive", link("Drive ${__data.fields.drive}", node="${__data.fields.node}",
                                         namespace="${__data.fields.namespace}", vm="${__data.fields.name}",
                                         drive="${__data.fields.drive}"))]), 24, 8),
        (table("Interfaces", "Every NIC of the VMs: its interface label, tap, netdev type, and whether vmprobe measures "
               "it; when not, why. An interface links to its panels.",
               "max by (node, namespace, name, interface, tap, type, measured, reason) (vmprobe_interface_info{%s})" % IFACE,
               [node, vm, ("interface", link("Interface ${__data.fields.interface}", node="${__data.fields.node}",
                                             namespace="${__data.fields.namespace}", vm="${__data.fields.name}",
                                             interface="${__data.fields.interface}"))]), 24, 8),
    ]


def variable(name, label, metric, sel, label_name=None):
    q = "label_values(%s%s, %s)" % (metric, "{%s}" % sel if sel else "", label_name or name)
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": q, "refId": name}, "definition": q, "refresh": 2, "includeAll": True,
            "multi": True, "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1}


def layout(items):
    """Panels in reading order: ids from 1, rows across, each item placed
    right of the last while it fits (grid 24 wide)."""
    panels, x, y, rowh = [], 0, 0, 0
    for it in items:
        p, w, h = (it, 24, 1) if isinstance(it, dict) else it
        if x + w > 24:
            x, y, rowh = 0, y + rowh, 0
        p = dict(p, id=len(panels) + 1, gridPos={"h": h, "w": w, "x": x, "y": y})
        panels.append(p)
        x, rowh = x + w, max(rowh, h)
        if p["type"] == "row":
            x, y, rowh = 0, y + 1, 0
    return panels


def dashboard():
    return {
        "uid": UID,
        "title": "vmprobe / Virtual machines",
        "description": "Per-VM network and disk IO measured by vmprobe (eBPF): where the time goes, per host, per VM, "
                       "per interface and drive.",
        "tags": ["vmprobe", "kubevirt", "virtualization"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            variable("cluster", "Cluster", "vmprobe_build_info", ""),
            variable("node", "Node", "vmprobe_build_info", 'cluster=~"$cluster"'),
            variable("namespace", "Namespace", "vmprobe_vm_info", HOST),
            variable("vm", "VM", "vmprobe_vm_info", HOST + ', namespace=~"$namespace"', "name"),
            variable("interface", "Interface", "vmprobe_interface_info", VM),
            variable("drive", "Drive", "vmprobe_drive_info", VM),
        ]},
        "panels": layout(where() + hosts() + network() + disk() + inventory()),
    }


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "helm", "vmprobe", "dashboards", "vmprobe.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(dashboard(), f, indent=1, ensure_ascii=False)
        f.write("\n")
