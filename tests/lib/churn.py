#!/usr/bin/env python3
"""
The churn soak's engine (tests/integration/churn_soak.sh; make soak).

VMs start and stop, up to --parallel at once, while /metrics is scraped
every 200 ms. Most VMs are stand-ins (tests/tools/tapguest as
qemu-system-x86_64: taps and images held as QEMU holds them, frames and
preads on request); every --real-every-th is Debian's QEMU under TCG,
paused. Each VM gets fresh taps (named after its worker's slot, so that
the next VM of the slot uses the names again; deleted after it, or, for
some, under it while it runs) and images, is waited for until vmprobe
counts every tap and drive, does network and disk IO, and is stopped
(SIGTERM or SIGKILL). Every --sample-th VM, and every real one, has its
counters compared with the ground truth before it stops: the tap's own
counters, and the reads the stand-in made; and each of its taps must
have one program of vmprobe's on each TC hook.

The survivors, a stand-in on each of --survivor-taps, start before the
churn and outlive it (the shell stops them): through the churn they do
a round of IO every second or so; every scrape must have them with all
their taps and drives, and none of their counters may go back; after the
churn their counters must equal the ground truth of all their rounds.

Every scrape must answer 200 and pass a structural check of the text
format (below); a sample also goes through `promtool check metrics`.
Once a VM has been reaped, a scrape that began later must soon (30 s)
have none of its series, and none may come back.

A warm-up round comes first; once its VMs are gone, vmprobe's fds, BPF
objects (by its fdinfo, and by name or program in bpftool's lists), pins
and VmRSS are the baseline the end of the run is compared with.

Prints progress as "# " lines and writes everything measured to --json;
the shell test turns that into TAP lines.
"""
import argparse
import gzip
import http.client
import json
import math
import multiprocessing
import os
import queue
import random
import re
import select
import signal
import socket
import struct
import fcntl
import subprocess
import threading
import time
import uuid

BOUND = 30.0  # seconds: every wait of the soak (generous: none is timed)

# --- The text format (0.0.4) -----------------------------------------------

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
VALUE = r'"[^"\\\n]*(?:\\[\\"n][^"\\\n]*)*"'
LABELS = r'\{(?:[a-zA-Z_][a-zA-Z0-9_]*=%s,)*(?:[a-zA-Z_][a-zA-Z0-9_]*=%s)?\}' % (VALUE, VALUE)
NUMBER = r'[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN'
SAMPLE = re.compile(r'(%s)(%s)? (%s)(?: -?[0-9]+)?' % (NAME, LABELS, NUMBER))
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
VM_NAME = re.compile(r'[{,]name="((?:[^"\\\n]|\\.)*)"')
TYPES = ('counter', 'gauge', 'histogram', 'summary', 'untyped')


class Exposition:
    """
    A structural check of a text exposition (0.0.4), line by line: every
    line a comment or a well-formed sample (name, escaped labels, a
    number), the last one ended; each family's TYPE once, before its
    samples, which are contiguous; no series twice; counters named _total
    and >= 0; each histogram series' buckets contiguous, le ascending up to
    +Inf, counts cumulative, +Inf = _count, _sum present.
    """

    INFO = ('vmprobe_interface_info', 'vmprobe_drive_info')

    def __init__(self, text):
        self.names = set()  # every value of a `name` label
        self.info = {m: [] for m in self.INFO}  # the label sets of these families
        self.errors, self.types, self.family = [], {}, {}
        self.current, self.keys = None, set()
        self.hist = {}    # (family, labels without le) -> [+Inf count, _count, _sum]
        self.bucket = None  # (key, le, count) of the last bucket line
        if text and not text.endswith('\n'):
            self.error('the body does not end in a newline', text[-200:])
        for n, line in enumerate(text.split('\n')[:-1], 1):
            if len(self.errors) >= 5:
                break
            if line.startswith('#'):
                self.comment(n, line)
            else:
                self.sample(n, line)
        self.bucket_end(len(text))
        for (fam, labels), (inf, count, total) in self.hist.items():
            if inf is None or inf != count or total is None:
                self.error('histogram %s{%s}: +Inf bucket %s, _count %s, _sum %s' %
                           (fam, labels, inf, count, total), '')

    def error(self, what, line):
        if len(self.errors) < 5:
            self.errors.append('%s: %.200r' % (what, line))

    def comment(self, n, line):
        parts = line.split(' ', 3)
        if len(parts) < 3 or parts[1] not in ('HELP', 'TYPE'):
            return
        if parts[1] == 'TYPE':
            if parts[2] in self.types or len(parts) < 4 or parts[3] not in TYPES:
                self.error('line %d: TYPE repeated or unknown' % n, line)
            self.types[parts[2]] = parts[3] if len(parts) > 3 else ''
            if self.types[parts[2]] == 'counter' and not parts[2].endswith('_total'):
                self.error('line %d: a counter not named _total' % n, line)
            self.current = parts[2]

    def family_of(self, name):
        fam = self.family.get(name)
        if fam is None:
            fam = name if name in self.types else next(
                (name[:-len(x)] for x in ('_bucket', '_sum', '_count') if name.endswith(x) and
                 self.types.get(name[:-len(x)]) in ('histogram', 'summary')), '')
            self.family[name] = fam
        return fam

    def sample(self, n, line):
        m = SAMPLE.fullmatch(line)
        if not m:
            return self.error('line %d malformed' % n, line)
        name, labels, value = m.groups()
        fam = self.family_of(name)
        if fam != self.current:
            return self.error('line %d: sample outside its family%s' % (n, '' if fam else ' (no TYPE)'),
                              line)
        key = line[:m.end(2) if labels else len(name)]
        if labels:
            self.labels(name, labels)
        if key in self.keys:
            self.error('line %d: series repeated' % n, line)
        self.keys.add(key)
        kind = self.types[fam]
        if kind == 'counter' and value.startswith('-'):
            self.error('line %d: counter negative' % n, line)
        if kind == 'histogram':
            self.histogram(n, line, fam, name[len(fam) + 1:], labels or '{}', float(value))

    def labels(self, name, labels):
        """Notes the series' `name` label (vmprobe writes it first), and info families' labels."""
        if labels.startswith('{name="') and '\\' not in labels:
            self.names.add(labels[7:labels.index('"', 7)])
        else:
            self.names.update(VM_NAME.findall(labels))
        if name in self.info:
            self.info[name].append(dict(LABEL.findall(labels)))

    def histogram(self, n, line, fam, part, labels, value):
        if part != 'bucket':
            self.bucket_end(n)
            h = self.hist.setdefault((fam, labels[1:-1]), [None, None, None])
            h[1 if part == 'count' else 2] = value
            return
        at = labels.rfind('le="')
        end = labels.find('"', at + 4)
        if at < 1 or labels[at - 1] not in '{,' or end < 0:
            return self.error('line %d: bucket without le' % n, line)
        le = float(labels[at + 4:end])
        key = (fam, (labels[1:at - 1] + labels[end + 1:-1]).strip(','))
        last = self.bucket
        if last and last[0] == key:
            if le <= last[1] or value < last[2]:
                self.error('line %d: buckets not ascending or not cumulative' % n, line)
        else:
            self.bucket_end(n)
            if key in self.hist:
                self.error('line %d: buckets of a series not together' % n, line)
            self.hist[key] = [None, None, None]
        self.bucket = (key, le, value)

    def bucket_end(self, n):
        """The last bucket line read ends its series: +Inf, its count."""
        if self.bucket:
            key, le, value = self.bucket
            if le != math.inf:
                self.error('line %d: buckets of %s{%s} do not end at +Inf' % ((n,) + key), '')
            self.hist[key][0] = value
            self.bucket = None


def parse(text):
    """The errors of a text exposition (none: valid); see Exposition."""
    return Exposition(text).errors


def value_of(text, metric, **want):
    """The value of the first sample of `metric` whose labels include `want`; None if none."""
    for line in text.split('\n'):
        if line.startswith(metric + '{'):
            labels, _, value = line[len(metric) + 1:].rpartition('} ')
            have = dict(LABEL.findall(labels))
            if all(have.get(k) == v for k, v in want.items()):
                return float(value)
    return None


LIVE_COUNTERS = ('vmprobe_network_packet_size_bytes_count{', 'vmprobe_network_packet_size_bytes_sum{',
                 'vmprobe_disk_latency_seconds_count{', 'vmprobe_disk_request_size_bytes_sum{')


def examine(text, prefixes, live):
    """
    In a process of its own: the errors of one scrape, which VMs (named
    with one of prefixes) it has, with their taps and drives said to be
    measured, and the counters of the VMs that live through the churn
    (named live...): series -> value.
    """
    x = Exposition(text)
    vms = {name: {'taps': set(), 'drives': set()} for name in x.names if name.startswith(prefixes)}
    mark = 'name="%s' % live
    counters = {}
    for line in text.split('\n'):
        if mark in line and line.startswith(LIVE_COUNTERS):
            key, _, value = line.rpartition(' ')
            counters[key] = float(value)
    for metric, key, label in (('vmprobe_interface_info', 'taps', 'tap'),
                               ('vmprobe_drive_info', 'drives', 'drive')):
        for labels in x.info[metric]:
            if labels.get('measured') == 'true' and labels.get('name') in vms:
                vms[labels['name']][key].add(labels.get(label))
    render = re.search(r'^vmprobe_scrape_duration_seconds (\S+)$', text, re.M)
    return x.errors, vms, counters, float(render.group(1)) if render else None


class Scraper:
    """
    /metrics every `interval` seconds over one kept-alive connection (as
    Prometheus does, gzip asked for). Each response is examined in another
    process (the checks take a CPU's time at 40 VMs: they would delay the
    next scrape), then, in order, published: which VMs it saw, and the VMs
    reaped before it began that it still has.
    """

    def __init__(self, port, work, interval, promtool_every, prefix, live):
        self.port, self.work, self.interval = port, work, interval
        self.promtool_every, self.prefixes, self.live = promtool_every, (prefix, live), live
        self.pool = multiprocessing.Pool(2)  # before any thread: it forks
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.examined = queue.Queue()
        self.seq = 0
        self.vms = {}           # name -> {'taps': set, 'drives': set} of the last scrape
        self.exited = {}        # name -> when it was reaped, until a scrape lacks it
        self.gone = {}          # name -> seconds from reaped to the first scrape without it
        self.stale, self.back = [], set()
        self.survivors = {}     # name -> its taps and drives, once counted: in every later scrape
        self.missing = []       # (scrape, survivor, what it lacked)
        self.counters = {}      # the survivors' counters in the last scrape
        self.went_back = []     # (scrape, series, from, to): a survivor's counter that decreased
        self.scrapes = self.failed = self.invalid = 0
        self.times, self.failures, self.max_vms = [], [], 0
        self.renders = []       # what vmprobe says each response took to render
        self.lag = 0.0          # the longest from a scrape's start to its publication
        self.promtool_q = queue.Queue(maxsize=1)
        self.promtool_runs = self.promtool_failed = 0
        self.promtool_errors = []
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.fetch_loop, self.publish_loop, self.promtool_loop)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        """Stops scraping; returns once every scrape made is published."""
        self.stop.set()
        self.threads[0].join()
        self.examined.put(None)
        self.threads[1].join()
        self.pool.terminate()

    def get(self, conn):
        conn.request('GET', '/metrics', headers={'Accept-Encoding': 'gzip'})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise ValueError('HTTP %d: %.200r' % (r.status, body))
        if r.getheader('Content-Encoding') == 'gzip':
            body = gzip.decompress(body)
        return body.decode('utf-8')

    def fetch_loop(self):
        conn, due = None, time.monotonic()
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                conn = conn or http.client.HTTPConnection('127.0.0.1', self.port, timeout=BOUND)
                text = self.get(conn)
            except Exception as e:  # noqa: BLE001 -- every failure counts
                conn = None
                self.times.append(time.monotonic() - t0)
                self.note_failure('failed', '%s: %s' % (type(e).__name__, e))
            else:
                self.times.append(time.monotonic() - t0)
                self.examined.put((t0, text, self.pool.apply_async(examine, (text, self.prefixes, self.live))))
            due += self.interval
            time.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - self.interval)

    def note_failure(self, kind, what, text=None):
        with self.cond:
            self.scrapes += 1
            setattr(self, kind, getattr(self, kind) + 1)
            if len(self.failures) < 10:
                self.failures.append('scrape %d %s: %s' % (self.scrapes, kind, what))
                if text is not None:
                    with open('%s/invalid-%d.txt' % (self.work, self.scrapes), 'w') as f:
                        f.write(text)

    def publish_loop(self):
        while True:
            item = self.examined.get()
            if item is None:
                return
            t0, text, result = item
            errors, vms, counters, render = result.get()
            self.renders.append(render)
            self.lag = max(self.lag, time.monotonic() - t0)
            if errors:
                self.note_failure('invalid', '; '.join(errors[:3]), text)
            else:
                with self.cond:
                    self.scrapes += 1
            if self.promtool_every and self.scrapes % self.promtool_every == 0:
                try:
                    self.promtool_q.put_nowait(text)
                except queue.Full:
                    pass  # the last sample is still being checked
            self.publish(t0, vms, counters)

    def publish(self, t0, vms, counters):
        with self.cond:
            for name, want in self.survivors.items():
                have = vms.get(name, {'taps': set(), 'drives': set()})
                if not (have['taps'] >= want['taps'] and have['drives'] >= want['drives']):
                    if len(self.missing) < 10:
                        self.missing.append((self.seq, name, sorted(want['taps'] - have['taps']),
                                             sorted(want['drives'] - have['drives'])))
            for key, old in self.counters.items():
                new = counters.get(key)
                if new is None or new < old:
                    if len(self.went_back) < 10:
                        self.went_back.append((self.seq, key, old, new))
            self.counters = counters
            self.back |= set(vms) & self.gone.keys()
            for name, t_exit in list(self.exited.items()):
                if t_exit >= t0:
                    continue
                if name not in vms:
                    self.gone[name] = t0 - t_exit
                    del self.exited[name]
                elif t0 - t_exit > BOUND and name not in self.stale:
                    self.stale.append(name)
            self.vms = vms
            self.max_vms = max(self.max_vms, len(vms))
            self.seq += 1
            self.cond.notify_all()

    def promtool_loop(self):
        while True:
            text = self.promtool_q.get()
            status, out, err = run(['promtool', 'check', 'metrics'], text.encode())
            self.promtool_runs += 1
            if status != 0:
                self.promtool_failed += 1
                if len(self.promtool_errors) < 5:
                    self.promtool_errors.append((out + err).decode()[:2000])

    def wait_for(self, pred, timeout=BOUND):
        """Until pred(vms of the latest scrape) holds; whether it did within timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            seq0 = self.seq  # judged by scrapes begun after the call
            while not (self.seq > seq0 + 1 and pred(self.vms)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def reaped(self, name, when):
        with self.cond:
            self.exited[name] = when


# --- Taps and VMs -----------------------------------------------------------

# A tap's fd open here must not be inherited by a child another thread is
# forking (it closes only at the child's exec): the tap would stay attached
# for that moment, and a stand-in opening it then fail with EBUSY.
SPAWN = threading.Lock()


def spawn(argv, **kw):
    with SPAWN:
        return subprocess.Popen(argv, **kw)


def run(argv, stdin=None):
    """Runs argv to its end: (status, stdout, stderr)."""
    p = spawn(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(stdin)
    return p.returncode, out, err

TUNSETIFF, TUNSETPERSIST = 0x400454ca, 0x400454cb
IFF_TAP, IFF_NO_PI, IFF_UP = 0x0002, 0x1000, 0x1
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
TAP_FIELDS = ('rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes', 'tx_dropped')


def tap_create(name):
    """A persistent tap, IPv6 off (so the host sends nothing into it), up: as libvirt makes them."""
    with SPAWN:
        fd = os.open('/dev/net/tun', os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', name.encode(), IFF_TAP | IFF_NO_PI))
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
        finally:
            os.close(fd)
    with open('/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name, 'w') as f:
        f.write('1')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack('16sH22x', name.encode(), 0))
        flags = struct.unpack('16sH22x', ifr)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack('16sH22x', name.encode(), flags | IFF_UP))


def tap_delete(name):
    run(['ip', 'link', 'del', name])


def tc_hooks(tcx, tap):
    """vmprobe's programs on tap's TC hooks, TCX links and clsact filters: "ingress|egress NAME", sorted."""
    found = []
    status, out, _ = run([tcx, 'list', tap])
    if status == 0:  # else a kernel without TCX
        found += [x for x in out.decode().splitlines() if x.split()[1:2] and x.split()[1].startswith('vmprobe_')]
    for hook in ('ingress', 'egress'):
        status, out, err = run(['tc', 'filter', 'show', 'dev', tap, hook])
        if status:
            return ['tc filter show dev %s %s: %s' % (tap, hook, err.decode().strip())]
        found += ['%s %s' % (hook, x) for x in re.findall(r' name (vmprobe_\w+)', out.decode())]
    return sorted(found)


def tap_stats(taps):
    out = {}
    for tap in taps:
        d = '/sys/class/net/%s/statistics/' % tap
        out[tap] = {f: int(open(d + f).read()) for f in TAP_FIELDS}
    return out


def readline(proc, timeout=BOUND):
    """The stand-in's next line of output, or '' after timeout or its exit."""
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode().strip() if r else ''


class Soak:
    BURST = [(4, 60), (2, 1514)]   # frames each stand-in writes into each tap (from the guest)
    INJECT = [(3, 100), (1, 1500)]  # frames sent out of each tap (to the guest)
    READS = 4                       # 4 KiB preads of each drive

    def __init__(self, a, scraper):
        self.a, self.scraper = a, scraper
        self.lock = threading.Lock()
        self.errors, self.live, self.max_live = [], 0, 0
        self.started = {'standin': 0, 'qemu': 0}
        self.sampled = {'standin': 0, 'qemu': 0}
        self.checked = {'standin': 0, 'qemu': 0}
        self.procs = set()  # running VMs, killed if the soak itself is stopped
        self.counted_s = []
        self.done, self.rss_trend = 0, []  # (VMs done, vmprobe's VmRSS in kB)
        self.survivors = []  # the VMs that live through the churn

    def error(self, vm, what):
        with self.lock:
            self.errors.append('%s: %s' % (vm, what))
        print('# %s: %s' % (vm, what), flush=True)

    def layout(self, i, slot):
        """
        What VM i is: kind, taps, drives, fd passing, tap deleted under it,
        signal. Its taps are named after the worker's slot: each name is
        used again by the worker's next VM, as libvirt's vnetN are.
        """
        real = self.a.qemu and self.a.real_every and i % self.a.real_every == self.a.real_every - 1
        return {
            'kind': 'qemu' if real else 'standin',
            'taps': ['vmsk%dn%d' % (slot, j) for j in range(1 if real or i % 3 else 2)],
            'drives': 1 if real or i % 4 else 2,
            'pass_fd': not real and i % 2 == 1,
            'unplug': i % 7 == 3,
            'signal': signal.SIGKILL if i % 5 in (1, 3) else signal.SIGTERM,
            'sample': real or i % self.a.sample == 0,
        }

    def argv(self, name, lay, images):
        if lay['kind'] == 'qemu':
            argv = [self.a.qemu, '-accel', 'tcg', '-m', '64', '-nodefaults', '-display', 'none', '-S']
        else:
            argv = [self.a.standin]
        argv += ['-name', 'guest=' + name, '-uuid', str(uuid.uuid4())]
        for j, tap in enumerate(lay['taps']):
            argv += ['-netdev', 'tap,id=n%d,ifname=%s,script=no,downscript=no' % (j, tap),
                     '-device', 'virtio-net-pci,netdev=n%d,id=net%d' % (j, j)]
        for j, img in enumerate(images):
            argv += ['-drive', 'file=%s,format=raw,if=none,id=d%d,cache=none,aio=threads' % (img, j),
                     '-device', 'virtio-blk-pci,drive=d%d,id=disk%d' % (j, j)]
        return argv

    def boot(self, name, lay):
        """VM `name` started: (its process, images, drives, log, start time)."""
        images = ['%s/img/%s-d%d.img' % (self.a.work, name, j) for j in range(lay['drives'])]
        drives = {'disk%d' % j for j in range(lay['drives'])}
        for img in images:
            with open(img, 'wb') as f:
                f.truncate(64 * 1024)
        env = dict(os.environ, TAPGUEST_BURST=','.join('%d:%d' % b for b in self.BURST),
                   TAPGUEST_READS=str(self.READS))
        if lay['pass_fd']:
            env['TAPGUEST_PASS_FD'] = '1'
        log = open('%s/vm/%s.log' % (self.a.work, name), 'wb')
        t_start = time.monotonic()
        proc = spawn(self.argv(name, lay, images), env=env, stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE if lay['kind'] == 'standin' else log, stderr=log)
        with self.lock:
            self.procs.add(proc)
        return proc, images, drives, log, t_start

    def run_vm(self, i, slot):
        name, lay = '%s%d' % (self.a.prefix, i), self.layout(i, slot)
        for tap in lay['taps']:
            tap_create(tap)
        proc, images, drives, log, t_start = self.boot(name, lay)
        with self.lock:
            self.started[lay['kind']] += 1
            self.sampled[lay['kind']] += lay['sample']
            self.live += 1
            self.max_live = max(self.max_live, self.live)
        try:
            self.live_vm(name, lay, proc, drives, t_start)
        finally:
            if lay['unplug']:
                for tap in lay['taps']:
                    tap_delete(tap)
                time.sleep(random.uniform(0, 0.3))
            proc.send_signal(lay['signal'])
            proc.wait()
            self.scraper.reaped(name, time.monotonic())
            with self.lock:
                self.procs.discard(proc)
                self.live -= 1
            for tap in lay['taps'] if not lay['unplug'] else []:
                tap_delete(tap)
            for img in images:
                os.unlink(img)
            log.close()
            self.finished()

    def survive(self, taps):
        """
        The VMs that live through the churn: a stand-in on each of taps
        (made before vmprobe started; every other one held by fd), with two
        drives; each counted before the churn, and in every scrape after.
        """
        for j, tap in enumerate(taps):
            name = '%s%d' % (self.a.live, j)
            lay = {'kind': 'standin', 'taps': [tap], 'drives': 2, 'pass_fd': j % 2 == 1}
            proc, _, drives, _, t_start = self.boot(name, lay)
            self.survivors.append({'name': name, 'lay': lay, 'proc': proc, 'drives': drives,
                                   'rounds': 0, 'sent': 0, 'read': 0})
            if self.counted(name, lay, proc, drives, t_start):
                with self.scraper.cond:
                    self.scraper.survivors[name] = {'taps': set(lay['taps']), 'drives': drives}

    def survivors_io(self, stop):
        """Rounds of IO on every survivor, one every 0.5 to 1.5 s, until stop is set."""
        while not stop.wait(random.uniform(0.5, 1.5)):
            for s in self.survivors:
                sent, read = self.io(s['lay'], s['proc'])
                s['rounds'] += 1
                s['sent'] += sent
                s['read'] += read

    def finished(self):
        """One more VM done; every 1/20 of the run, vmprobe's VmRSS noted."""
        with self.lock:
            self.done += 1
            if self.done % max(1, (self.a.vms + self.a.warmup) // 20) == 0:
                self.rss_trend.append((self.done, vm_rss(self.a.pid)))

    def counted(self, name, lay, proc, drives, t_start):
        """Whether the VM started and vmprobe counts all its taps and drives (BOUND s); else an error."""
        if lay['kind'] == 'standin' and not readline(proc).startswith('ready'):
            self.error(name, 'the stand-in did not start')
            return False
        taps = set(lay['taps'])
        if not self.scraper.wait_for(
                lambda vms: name in vms and vms[name]['taps'] >= taps and vms[name]['drives'] >= drives):
            self.error(name, 'not counted within %d s of its start (taps %s, drives %s)' %
                       (BOUND, sorted(taps), sorted(drives)))
            return False
        with self.lock:
            self.counted_s.append((round(time.monotonic() - t_start, 3), name))
        return True

    def live_vm(self, name, lay, proc, drives, t_start):
        hold = random.uniform(self.a.hold_min, self.a.hold_max)
        if not self.counted(name, lay, proc, drives, t_start):
            return
        time.sleep(random.uniform(0, hold / 2))
        sent, read = self.io(lay, proc)
        if lay['sample'] and self.exact(name, lay, drives, sent, read):
            with self.lock:
                self.checked[lay['kind']] += 1
        time.sleep(max(0.0, t_start + hold - time.monotonic()))

    def io(self, lay, proc):
        """
        One round of IO: a stand-in writes its burst into each tap and reads
        each drive; frames are sent out of each tap. (Frames sent, blocks
        read) as the stand-in says (-1: it did not).
        """
        sent = read = 0
        if lay['kind'] == 'standin':
            proc.send_signal(signal.SIGUSR1)
            line = readline(proc).split()
            sent = int(line[1]) if line[:1] == ['sent'] else -1
            proc.send_signal(signal.SIGUSR2)
            line = readline(proc).split()
            read = int(line[1]) if line[:1] == ['read'] else -1
        for tap in lay['taps']:
            for count, size in self.INJECT:
                # By its own name: as qemu-system-x86_64 it would be a VM too.
                run([os.path.realpath(self.a.standin), 'inject', tap, str(count), str(size)])
        return sent, read

    def net_diffs(self, name, lay, stats, text, rounds):
        """
        Each tap's counters against vmprobe's. A stand-in drains its taps,
        so the tap's own counters are the truth both ways. A paused QEMU
        reads one frame and holds it; the rest wait in the tap's ring,
        which the tap counts only as they are read: towards it, the truth
        is what was sent into the tap.
        """
        standin, diffs = lay['kind'] == 'standin', []
        burst = self.BURST if standin else []
        wrote = (rounds * sum(c for c, _ in burst), rounds * sum(c * s for c, s in burst))
        inj = (rounds * sum(c for c, _ in self.INJECT), rounds * sum(c * s for c, s in self.INJECT))
        for tap, st in stats.items():
            def cmp(what, want, got):
                if want != got:
                    diffs.append('%s %s: expected %s, got %s' % (tap, what, want, got))

            def vmprobe(metric, direction, **more):
                return value_of(text, metric, name=name, interface=tap, direction=direction, **more)
            cmp('tap rx_packets, rx_bytes (what the guest wrote)', wrote,
                (st['rx_packets'], st['rx_bytes']))
            to_guest = inj
            if standin:
                to_guest = (st['tx_packets'] + st['tx_dropped'], st['tx_bytes'])
                cmp('tap tx_packets + tx_dropped, tx_bytes (what was sent to the guest)', inj, to_guest)
            cmp('tx packets, bytes = tap rx_packets, rx_bytes', (st['rx_packets'], st['rx_bytes']),
                (vmprobe('vmprobe_network_packet_size_bytes_count', 'tx'),
                 vmprobe('vmprobe_network_packet_size_bytes_sum', 'tx')))
            cmp('rx packets, bytes = frames, bytes to the guest', to_guest,
                (vmprobe('vmprobe_network_packet_size_bytes_count', 'rx'),
                 vmprobe('vmprobe_network_packet_size_bytes_sum', 'rx')))
            cmp('frame sizes in the buckets (+Inf, tx, rx)', (wrote[0], inj[0]),
                (vmprobe('vmprobe_network_packet_size_bytes_bucket', 'tx', le='+Inf'),
                 vmprobe('vmprobe_network_packet_size_bytes_bucket', 'rx', le='+Inf')))
        return diffs

    def disk_diffs(self, name, drives, text, rounds):
        """
        Each drive's operations (latency samples), bytes and size samples
        against the stand-in's preads; a flush has no size, hence no bytes.
        """
        diffs = []
        for drive in sorted(drives):
            def vmprobe(metric, op):
                return value_of(text, metric, name=name, drive=drive, operation=op)
            for op, ops, size in (('read', rounds * self.READS, 4096), ('write', 0, 0), ('flush', 0, 0)):
                sized = op != 'flush'
                want = (ops, ops * size if sized else None, ops if sized else None)
                got = (vmprobe('vmprobe_disk_latency_seconds_count', op),
                       vmprobe('vmprobe_disk_request_size_bytes_sum', op),
                       vmprobe('vmprobe_disk_request_size_bytes_count', op))
                if want != got:
                    diffs.append('%s %s operations, bytes, size samples: expected %s, got %s' %
                                 (drive, op, want, got))
        return diffs

    def metrics(self):
        """One scrape of our own (a new connection, no gzip): (status, text)."""
        conn = http.client.HTTPConnection('127.0.0.1', self.a.port, timeout=BOUND)
        try:
            conn.request('GET', '/metrics')
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def exact(self, name, lay, drives, sent, read, rounds=1):
        """
        Whether vmprobe's counters equal the ground truth after `rounds` of
        IO (polled for BOUND s) and each tap has one program of vmprobe's
        on each TC hook; else an error says how they differ.
        """
        standin = lay['kind'] == 'standin'
        if standin and (sent, read) != (rounds * sum(c for c, _ in self.BURST) * len(lay['taps']),
                                        rounds * self.READS * len(drives)):
            self.error(name, 'the stand-in wrote %d frames and read %d blocks in %d rounds' %
                       (sent, read, rounds))
            return False
        deadline, diffs = time.monotonic() + BOUND, ['no scrape while the taps were quiet']
        while time.monotonic() < deadline:
            # Between two equal reads of the taps' counters: both count the same frames.
            before = tap_stats(lay['taps'])
            try:
                status, text = self.metrics()
            except OSError as e:
                diffs = ['scrape: %s' % e]
                time.sleep(0.2)
                continue
            stats = tap_stats(lay['taps'])
            if before != stats:
                time.sleep(0.1)
                continue
            errors = parse(text)
            if status != 200 or errors:
                diffs = ['scrape %d: %s' % (status, errors[:3])]
                break
            mine = '\n'.join(line for line in text.split('\n') if 'name="%s"' % name in line)
            diffs = self.net_diffs(name, lay, stats, mine, rounds)
            if standin:
                diffs += self.disk_diffs(name, drives, mine, rounds)
            if not diffs:
                return self.hooks(name, lay['taps'])
            time.sleep(0.2)
        self.error(name, 'counts differ from the ground truth: ' + '; '.join(diffs[:8]))
        return False

    def hooks(self, name, taps):
        """Whether each tap has exactly one program of vmprobe's on each TC hook; else an error."""
        for tap in taps:
            found = tc_hooks(self.a.tcx, tap)
            if [x.split()[0] for x in found] != ['egress', 'ingress']:
                self.error(name, 'tap %s: vmprobe\'s programs on its TC hooks: %s' % (tap, found))
                return False
        return True

    def kill_all(self):
        with self.lock:
            for proc in self.procs:
                proc.kill()

    def round(self, first, count):
        """VMs first..first+count-1 through --parallel workers; waits for all."""
        todo = queue.Queue()
        for i in range(first, first + count):
            todo.put(i)

        def worker(slot):
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    self.run_vm(i, slot)
                except Exception as e:  # noqa: BLE001 -- a broken VM is a finding, not a crash
                    self.error('%s%d' % (self.a.prefix, i), 'soak error: %r' % e)

        workers = [threading.Thread(target=worker, args=(slot,)) for slot in range(self.a.parallel)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()


# --- vmprobe's resources ----------------------------------------------------

def resources(pid):
    """vmprobe's fds (by kind), the BPF objects they hold, its pins, VmRSS, and bpftool's lists."""
    ids = {'prog': set(), 'map': set(), 'link': set()}
    kinds = {}
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
            text = open('/proc/%d/fdinfo/%s' % (pid, fd)).read()
        except OSError:
            continue  # closed meanwhile
        # anon_inode:bpf-map, anon_inode:[eventfd], socket:[123], a path: bpf-map, eventfd, socket, the path
        kind = re.sub(r'^(?:anon_inode:)?\[?([^:\[\]]*).*', r'\1', target)
        for line in text.splitlines():
            key, _, value = line.partition(':')
            if key in ('prog_id', 'map_id', 'link_id'):
                ids[key[:-3]].add(int(value))
            elif key == 'link_type':
                kind += ' ' + value.strip()
        kinds[kind] = kinds.get(kind, 0) + 1
    rss = vm_rss(pid)
    mem = {}  # resident kB of the heap, anonymous mappings (thread arenas...), the rest
    kind = None
    for line in open('/proc/%d/smaps' % pid):
        f = line.split()
        if not line[0].isupper():
            kind = 'heap' if f[-1] == '[heap]' else 'anon' if len(f) == 5 else 'other'
        elif f[0] == 'Rss:':
            mem[kind] = mem.get(kind, 0) + int(f[1])
    stat = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf('SC_CLK_TCK')
    pins = sorted(os.path.relpath(os.path.join(d, f), '/sys/fs/bpf')
                  for d, _, files in os.walk('/sys/fs/bpf/vmprobe') for f in files)

    def bpftool(kind):
        status, out, err = run(['bpftool', '-j', kind, 'show'])
        if status:
            raise RuntimeError('bpftool %s show: %s' % (kind, err.decode()))
        return json.loads(out or b'[]')
    progs, maps, links = bpftool('prog'), bpftool('map'), bpftool('link')
    # vmprobe's programs and maps by name, wherever they are held; links by program.
    prog_names = {p.get('name') for p in progs if p['id'] in ids['prog']}
    map_names = {m.get('name') for m in maps if m['id'] in ids['map']}
    return {
        'fds': sum(kinds.values()), 'fd_kinds': kinds, 'rss_kb': rss, 'rss_by_kind_kb': mem, 'cpu_s': cpu, 'pins': pins,
        'prog_ids': sorted(ids['prog']), 'map_ids': sorted(ids['map']),
        'link_ids': sorted(ids['link']),
        'bpftool_progs': sum(p.get('name') in prog_names for p in progs),
        'bpftool_maps': sum(m.get('name') in map_names for m in maps),
        'bpftool_links': sum(link.get('prog_id') in ids['prog'] for link in links),
    }


def vm_rss(pid):
    return next(int(line.split()[1]) for line in open('/proc/%d/status' % pid)
                if line.startswith('VmRSS:'))


def baseline(pid):
    """The resources at rest: of a few samples, the one with the fewest fds (a scan opens some)."""
    samples = []
    for _ in range(5):
        samples.append(resources(pid))
        time.sleep(0.2)
    return min(samples, key=lambda r: r['fds'])


def settle(pid, base):
    """The resources once they equal `base` (fds and BPF; RSS aside), or after BOUND s."""
    deadline = time.monotonic() + BOUND
    while True:
        now = resources(pid)
        same = all(now[k] == base[k] for k in base if k not in ('rss_kb', 'rss_by_kind_kb', 'cpu_s'))
        if same or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--pid', type=int, required=True, help="vmprobe serve's pid")
    p.add_argument('--work', required=True)
    p.add_argument('--standin', required=True, help='tapguest, linked as qemu-system-x86_64')
    p.add_argument('--qemu', default='', help="Debian's qemu-system-x86_64 ('' for none)")
    p.add_argument('--vms', type=int, default=100)
    p.add_argument('--parallel', type=int, default=20)
    p.add_argument('--warmup', type=int, default=0, help='VMs of the warm-up round (default 2 x parallel)')
    p.add_argument('--real-every', type=int, default=10)
    p.add_argument('--sample', type=int, default=10)
    p.add_argument('--hold-min', type=float, default=1.0)
    p.add_argument('--hold-max', type=float, default=4.0)
    p.add_argument('--interval', type=float, default=0.2)
    p.add_argument('--promtool-every', type=int, default=10)
    p.add_argument('--seed', type=int, default=int(time.time()))
    p.add_argument('--prefix', default='soak-')
    p.add_argument('--live', default='soaklive-', help="the survivors' name prefix")
    p.add_argument('--survivor-taps', default='', help='taps for the VMs that live through the churn, by commas')
    p.add_argument('--tcx', required=True, help='tests/tools/tcx')
    p.add_argument('--json', required=True)
    a = p.parse_args()
    a.warmup = a.warmup or 2 * a.parallel
    random.seed(a.seed)
    os.makedirs(a.work + '/img', exist_ok=True)
    os.makedirs(a.work + '/vm', exist_ok=True)
    print('# churn: %d VMs (after %d of warm-up), %d at once, seed %d' %
          (a.vms, a.warmup, a.parallel, a.seed), flush=True)

    scraper = Scraper(a.port, a.work, a.interval, a.promtool_every, a.prefix, a.live)
    scraper.start()
    soak = Soak(a, scraper)

    def stopped(sig, frame):
        soak.kill_all()
        os._exit(1)
    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)
    none_left = lambda vms: not any(n.startswith(a.prefix) for n in vms)  # noqa: E731

    soak.survive([t for t in a.survivor_taps.split(',') if t])
    with open(a.work + '/survivors.pids', 'w') as f:  # for the shell to stop, whatever happens here
        f.write(''.join('%d\n' % s['proc'].pid for s in soak.survivors))
    soak.round(0, a.warmup)
    warm_gone = scraper.wait_for(none_left)
    base = baseline(a.pid)
    cpu0 = time.process_time()
    print('# baseline after the warm-up: %d fds, %d progs, %d maps, %d links, VmRSS %d kB' %
          (base['fds'], len(base['prog_ids']), len(base['map_ids']), len(base['link_ids']),
           base['rss_kb']), flush=True)
    scrapes0, t0 = scraper.scrapes, time.monotonic()
    stop_io = threading.Event()
    io = threading.Thread(target=soak.survivors_io, args=(stop_io,))
    io.start()
    soak.round(a.warmup, a.vms)
    duration = time.monotonic() - t0
    stop_io.set()
    io.join()
    survivors_exact = sum(soak.exact(s['name'], s['lay'], s['drives'], s['sent'], s['read'], s['rounds'])
                          for s in soak.survivors)
    end_gone = scraper.wait_for(none_left)
    # Every VM reaped is judged by a scrape that began after it (BOUND s at most).
    scraper.wait_for(lambda vms: not scraper.exited, BOUND + 5)
    end = settle(a.pid, base)
    scraper.join()
    stale = scraper.stale + sorted(scraper.exited)
    times = sorted(scraper.times)
    gone = sorted(scraper.gone.values())
    renders = sorted(x for x in scraper.renders if x is not None)
    out = {
        'seed': a.seed, 'vms': a.vms, 'warmup': a.warmup, 'parallel': a.parallel,
        'started': soak.started, 'sampled': soak.sampled, 'exact_checked': soak.checked, 'max_live': soak.max_live,
        'max_vms_in_a_scrape': scraper.max_vms, 'duration_s': round(duration, 1),
        'errors': soak.errors,
        'scrapes': scraper.scrapes, 'scrapes_main': scraper.scrapes - scrapes0,
        'failed_scrapes': scraper.failed, 'invalid_scrapes': scraper.invalid,
        'scrape_failures': scraper.failures,
        'scrape_max_s': round(times[-1], 3) if times else None,
        'scrape_p99_s': round(times[int(0.99 * (len(times) - 1))], 3) if times else None,
        'scrape_median_s': round(times[len(times) // 2], 3) if times else None,
        'promtool_runs': scraper.promtool_runs, 'promtool_failed': scraper.promtool_failed,
        'promtool_errors': scraper.promtool_errors,
        'warmup_all_gone': warm_gone, 'end_all_gone': end_gone,
        'stale_vms': stale, 'back_vms': sorted(scraper.back),
        'reaped_to_gone_max_s': round(gone[-1], 3) if gone else None,
        'reaped_to_gone_median_s': round(gone[len(gone) // 2], 3) if gone else None,
        'start_to_counted_max_s': max(soak.counted_s)[0] if soak.counted_s else None,
        'start_to_counted_slowest': sorted(soak.counted_s)[-5:],
        'vms_judged_gone': len(gone),
        'base': base, 'end': end, 'rss_growth_kb': end['rss_kb'] - base['rss_kb'],
        'driver_cpu_s': round(time.process_time() - cpu0, 1),
        'vmprobe_cpu_s': round(end['cpu_s'] - base['cpu_s'], 1),
        'rss_trend_kb': soak.rss_trend,
        'render_max_s': renders[-1] if renders else None,
        'publish_lag_max_s': round(scraper.lag, 3),
        'render_median_s': renders[len(renders) // 2] if renders else None,
        'survivors': [{'name': s['name'], 'pid': s['proc'].pid, 'taps': s['lay']['taps'],
                       'drives': len(s['drives']), 'rounds': s['rounds']} for s in soak.survivors],
        'survivors_counted': len(scraper.survivors), 'survivors_exact': survivors_exact,
        'survivor_missing': scraper.missing, 'survivor_went_back': scraper.went_back,
        'survivor_series': len(scraper.counters),
    }
    with open(a.json, 'w') as f:
        json.dump(out, f, indent=1)
    print('# churn: %d VMs in %.1f s, %d scrapes (max %.3f s), RSS growth %d kB' %
          (a.vms, duration, out['scrapes_main'], out['scrape_max_s'] or 0, out['rss_growth_kb']),
          flush=True)


if __name__ == '__main__':
    main()
