#!/usr/bin/env python3
"""What a cluster would make of the rendered chart, offline, for tests that
run vmprobe as its pod would run.

  kubelet.py pod MANIFESTS.json SECRETS OUT
      The DaemonSet's container: OUT/args (NUL-separated), OUT/caps
      (comma-separated), OUT/nnp (yes when allowPrivilegeEscalation is
      false), OUT/port, OUT/probes (one line each: NAME httpGet SCHEME PATH
      PORT, or NAME tcpSocket PORT), OUT/mounts (VOLUME MOUNTPATH), and each
      projected, configMap or secret volume written under OUT/vol/VOLUME as
      the kubelet's atomic writer lays it out: the files in a time-stamped
      directory, ..data pointing to it, a symlink per top-level name. Run
      again, it swaps ..data to a new directory as the kubelet does when a
      Secret changes.
  kubelet.py scrape MANIFESTS.json SECRETS OUT
      The ServiceMonitor's endpoint as the lines of a Prometheus scrape
      job (scheme, tls_config, basic_auth, ...), as the Prometheus Operator
      writes them, on stdout; the Secrets' values it refers to in files
      under OUT. Fails on a field it does not translate.

SECRETS is a directory of the cluster's own Secrets, SECRETS/NAME/KEY; the
chart's rendered Secrets and ConfigMaps come from MANIFESTS.json (the
documents as a JSON array, tests/k8s/tojson.mjs).
"""
import base64
import json
import os
import sys
import time


def objects(path):
    docs = json.load(open(path))
    return docs, {(d["kind"], d["metadata"]["name"]): d for d in docs}


def key_of(by, secrets, kind, name, key):
    """The bytes of KEY of the ConfigMap or Secret NAME."""
    obj = by.get((kind, name))
    if obj is not None:
        if key in obj.get("stringData", {}):
            return obj["stringData"][key].encode()
        if key in obj.get("data", {}):
            v = obj["data"][key]
            return base64.b64decode(v) if kind == "Secret" else v.encode()
        sys.exit("%s %s has no key %s" % (kind, name, key))
    if kind == "Secret":
        path = os.path.join(secrets, name, key)
        if os.path.exists(path):
            return open(path, "rb").read()
    sys.exit("no %s %s with key %s in the manifests or %s" % (kind, name, key, secrets))


def keys_of(by, secrets, kind, name):
    obj = by.get((kind, name))
    if obj is not None:
        return sorted(set(obj.get("data", {})) | set(obj.get("stringData", {})))
    return sorted(os.listdir(os.path.join(secrets, name)))


def volume_files(vol, by, secrets):
    """path -> (bytes, mode) of a projected, configMap or secret volume; None for others."""
    if "projected" in vol:
        sources, default = vol["projected"]["sources"], vol["projected"].get("defaultMode", 0o644)
    elif "configMap" in vol or "secret" in vol:
        sources, default = [vol], vol.get("configMap", vol.get("secret", {})).get("defaultMode", 0o644)
    else:
        return None
    files = {}
    for s in sources:
        kind = "ConfigMap" if "configMap" in s else "Secret"
        src = s["configMap"] if kind == "ConfigMap" else s["secret"]
        name = src.get("name", src.get("secretName"))
        items = src.get("items") or [{"key": k, "path": k} for k in keys_of(by, secrets, kind, name)]
        for i in items:
            files[i["path"]] = (key_of(by, secrets, kind, name, i["key"]), i.get("mode", default))
    return files


def atomic_write(root, files):
    """The kubelet's atomic writer: a new time-stamped directory, then ..data swapped to it."""
    os.makedirs(root, exist_ok=True)
    ts = os.path.join(root, time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns() % 10**9))
    os.mkdir(ts)
    for path, (data, mode) in files.items():
        full = os.path.join(ts, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, mode)
    old = os.path.join(root, "..data")
    prev = os.readlink(old) if os.path.islink(old) else None
    os.symlink(os.path.basename(ts), os.path.join(root, "..data_tmp"))
    os.rename(os.path.join(root, "..data_tmp"), old)
    for top in {p.split("/")[0] for p in files}:
        link = os.path.join(root, top)
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", top), link)
    if prev:
        for d, subdirs, names in os.walk(os.path.join(root, prev), topdown=False):
            for n in names:
                os.unlink(os.path.join(d, n))
            for n in subdirs:
                os.rmdir(os.path.join(d, n))
        os.rmdir(os.path.join(root, prev))


def pod(manifests, secrets, out):
    docs, by = objects(manifests)
    ds = [d for d in docs if d["kind"] == "DaemonSet"][0]
    spec = ds["spec"]["template"]["spec"]
    c = spec["containers"][0]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "args"), "w") as f:
        f.write("\0".join(c.get("args", [])) + "\0")
    sc = c.get("securityContext", {})
    with open(os.path.join(out, "caps"), "w") as f:
        f.write(",".join(sc.get("capabilities", {}).get("add", [])) + "\n")
    with open(os.path.join(out, "nnp"), "w") as f:
        f.write("yes\n" if sc.get("allowPrivilegeEscalation") is False else "no\n")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    with open(os.path.join(out, "port"), "w") as f:
        f.write("%d\n" % c["ports"][0]["containerPort"])
    with open(os.path.join(out, "probes"), "w") as f:
        for name in ("livenessProbe", "readinessProbe", "startupProbe"):
            p = c.get(name)
            if not p:
                continue
            if "httpGet" in p:
                g = p["httpGet"]
                f.write("%s httpGet %s %s %s\n" % (name, g.get("scheme", "HTTP"), g["path"],
                                                  ports.get(g["port"], g["port"])))
            elif "tcpSocket" in p:
                f.write("%s tcpSocket %s\n" % (name, ports.get(p["tcpSocket"]["port"], p["tcpSocket"]["port"])))
            else:
                f.write("%s other\n" % name)
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    with open(os.path.join(out, "mounts"), "w") as f:
        for m in c.get("volumeMounts", []):
            files = volume_files(vols[m["name"]], by, secrets)
            if files is None:
                continue
            atomic_write(os.path.join(out, "vol", m["name"]), files)
            f.write("%s %s\n" % (m["name"], m["mountPath"]))


def scrape(manifests, secrets, out):
    docs, by = objects(manifests)
    sm = [d for d in docs if d["kind"] == "ServiceMonitor"][0]
    ns = sm["metadata"]["namespace"]
    e = dict(sm["spec"]["endpoints"][0])
    os.makedirs(out, exist_ok=True)

    def secret_file(sel, what):
        path = os.path.join(out, what)
        with open(path, "wb") as f:
            f.write(key_of(by, secrets, "Secret", sel["name"], sel["key"]))
        return path

    def from_ref(ref, what):  # a SecretOrConfigMap
        if "secret" in ref:
            return secret_file(ref["secret"], what)
        sys.exit("%s from a ConfigMap is not translated" % what)

    lines = ["    scheme: %s" % e.pop("scheme", "http"), "    metrics_path: %s" % e.pop("path", "/metrics")]
    if "honorLabels" in e:
        lines.append("    honor_labels: %s" % str(e.pop("honorLabels")).lower())
    tls = dict(e.pop("tlsConfig", {}))
    if tls:
        lines.append("    tls_config:")
        for k, v in (("ca", "ca_file"), ("cert", "cert_file")):
            if k in tls:
                lines.append("      %s: %s" % (v, from_ref(tls.pop(k), k)))
        if "keySecret" in tls:
            lines.append("      key_file: %s" % secret_file(tls.pop("keySecret"), "key"))
        for k, v in (("serverName", "server_name"), ("insecureSkipVerify", "insecure_skip_verify"),
                     ("minVersion", "min_version"), ("maxVersion", "max_version")):
            if k in tls:
                val = tls.pop(k)
                lines.append("      %s: %s" % (v, str(val).lower() if isinstance(val, bool) else val))
        if tls:
            sys.exit("tlsConfig fields not translated: %s" % ", ".join(tls))
    auth = dict(e.pop("basicAuth", {}))
    if auth:
        user = key_of(by, secrets, "Secret", auth["username"]["name"], auth["username"]["key"]).decode()
        lines += ["    basic_auth:", "      username: %s" % json.dumps(user),
                  "      password_file: %s" % secret_file(auth["password"], "password")]
    # What a scrape of one static target has no use for.
    for k in ("port", "interval", "scrapeTimeout", "relabelings", "metricRelabelings"):
        e.pop(k, None)
    if e:
        sys.exit("endpoint fields not translated: %s" % ", ".join(e))
    print("# ServiceMonitor %s/%s" % (ns, sm["metadata"]["name"]))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("pod", "scrape"):
        sys.exit("usage: kubelet.py pod|scrape MANIFESTS.json SECRETS OUT")
    {"pod": pod, "scrape": scrape}[sys.argv[1]](*sys.argv[2:])
