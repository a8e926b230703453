// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * BPF_PROG_TEST_RUN of the tap programs' TCP tracking on crafted
 * exchanges: handshakes opened by either side, timestamps, sequence
 * numbers without timestamps, retransmissions, out-of-order segments,
 * RST, FIN, IPv4 and IPv6, VLAN tags, frames that cannot be parsed.
 * Each case checks the exact samples and counters it must leave, and
 * every frame comes back unchanged with TC_ACT_UNSPEC. Prints TAP.
 *
 * RTT samples are real time between runs (bpf_ktime_get_ns): a case
 * sleeps D between a segment and its answer and expects the sample in
 * D's log2 slot or the next one (a sleep is never shorter than asked;
 * a loaded 2-CPU machine may oversleep, not by 2x in practice). Answers
 * sent at once must land below 4 ms for the same reason.
 */
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bpftest.h"
#include "../lib/pktgen.h"
#include "probes/net/net_probe.h"
#include "core/netns.h"
#include "core/tapdev.h"

#define FIN PKTGEN_FIN
#define SYN PKTGEN_SYN
#define RST PKTGEN_RST
#define PSH PKTGEN_PSH
#define ACK PKTGEN_ACK

static struct net_probe np;
static int ifindex;

struct conn {
	bool v6;
	int vlans;                /* tags in the frame: 0, 1 (802.1Q) or 2 (802.1ad + 802.1Q) */
	bool ts;                  /* segments carry timestamps */
	unsigned char guest[16];  /* address: 4 or 16 bytes */
	unsigned char peer[16];
	unsigned short gport, pport;
	unsigned slot;
};

/* What a case left: per direction stats and the health counters. */
struct snap {
	struct net_stats st[NET_DIR_MAX];
	__u64 ctr[NET_ERR_MAX];
	long flows;
};

static void snap_take(const struct conn *c, struct snap *s)
{
	for (unsigned d = 0; d < NET_DIR_MAX; d++)
		net_read(&np, c->slot, d, &s->st[d]);
	for (unsigned i = 0; i < NET_ERR_MAX; i++)
		s->ctr[i] = net_counter(&np, i);
	s->flows = net_flows_live(&np);
}

static __u64 samples(const struct net_stats *st)
{
	__u64 n = 0;

	for (int i = 0; i < NET_RTT_SLOTS; i++)
		n += st->rtt_slots[i];
	return n;
}

/* The slot of the only sample added to path `dir` between a and b; -1 if not one. */
static int only_sample_slot(const struct snap *a, const struct snap *b, unsigned dir)
{
	int slot = -1;

	for (int i = 0; i < NET_RTT_SLOTS; i++) {
		__u64 d = b->st[dir].rtt_slots[i] - a->st[dir].rtt_slots[i];

		if (d > 1 || (d == 1 && slot >= 0))
			return -1;
		if (d == 1)
			slot = i;
	}
	return slot;
}

/*
 * One segment of c going `dir` (NET_DIR_TX: from the guest), through the
 * program of that direction. A SYN carries Linux's option layout (MSS,
 * SACK permitted, timestamps, NOP, window scale) so the generic option
 * walk is exercised; other segments NOP NOP TS, the fast path.
 */
static void seg(const struct conn *c, unsigned dir, unsigned flags, __u32 seq, __u32 ack,
		unsigned len, __u32 tsval, __u32 tsecr)
{
	static const unsigned char mac_a[6] = { 0x52, 0x54, 0, 0, 0, 1 }, mac_b[6] = { 0x52, 0x54, 0, 0, 0, 2 };
	unsigned char f[2048], *opt;
	const unsigned char *src = dir == NET_DIR_TX ? c->guest : c->peer;
	const unsigned char *dst = dir == NET_DIR_TX ? c->peer : c->guest;
	unsigned optlen = !c->ts ? 0 : (flags & SYN) ? 20 : 12;
	struct pktgen pg;
	int retval, same, err;
	size_t n;

	pktgen_init(&pg, f, sizeof(f));
	pktgen_eth(&pg, mac_a, mac_b);
	if (c->vlans == 2)
		pktgen_vlan(&pg, 0x88a8, 100);
	if (c->vlans >= 1)
		pktgen_vlan(&pg, 0x8100, 200);
	if (c->v6)
		pktgen_ipv6(&pg, src, dst, 6);
	else
		pktgen_ipv4(&pg, src, dst, 6);
	opt = pktgen_tcp(&pg, dir == NET_DIR_TX ? c->gport : c->pport,
			 dir == NET_DIR_TX ? c->pport : c->gport, seq, ack, flags, optlen);
	if (opt && c->ts && (flags & SYN)) {
		memcpy(opt, "\x02\x04\x05\xb4\x04\x02\x08\x0a", 8);
		pktgen_put32(opt + 8, tsval);
		pktgen_put32(opt + 12, tsecr);
		memcpy(opt + 16, "\x01\x03\x03\x07", 4);
	} else if (opt && c->ts) {
		memcpy(opt, "\x01\x01\x08\x0a", 4);
		pktgen_put32(opt + 4, tsval);
		pktgen_put32(opt + 8, tsecr);
	}
	pktgen_payload(&pg, len, 'x');
	n = pktgen_finish(&pg);
	err = run(net_prog_fd(&np, dir == NET_DIR_TX), ifindex, f, (unsigned)n, &retval, &same);
	if (err || retval != TC_ACT_UNSPEC || !same)
		report(0, "segment passed unchanged", "err %d retval %d same %d", err, retval, same);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void conn_init(struct conn *c, bool v6, int vlans, bool ts, unsigned short gport)
{
	static unsigned next_slot;
	struct net_iface_key key = {};

	memset(c, 0, sizeof(*c));
	c->v6 = v6;
	c->vlans = vlans;
	c->ts = ts;
	if (v6) {
		inet_pton(AF_INET6, "fd00::2", c->guest);
		inet_pton(AF_INET6, "2001:db8::1", c->peer);
	} else {
		inet_pton(AF_INET, "10.0.0.2", c->guest);
		inet_pton(AF_INET, "192.0.2.1", c->peer);
	}
	c->gport = gport;
	c->pport = 443;
	/* Each case its own tap slot: counters start at zero. */
	c->slot = ++next_slot;
	if (np.have_netns_cookie)
		netns_current_cookie(&key.netns_cookie);
	key.ifindex = ifindex;
	bpf_map_update_elem(net_ifaces_fd(&np), &key, &c->slot, BPF_ANY);
}

#define DELTA(a, b, dir, field) ((b).st[dir].field - (a).st[dir].field)
#define CTR(a, b, i) ((b).ctr[i] - (a).ctr[i])
#define SLOT_OF_MS(ms) (int)(ms == 5 ? 23 : ms == 10 ? 24 : ms == 20 ? 25 : -1)

/* A sample for a sleep of `ms`: its log2 slot or the next one. */
static bool near(int slot, unsigned ms)
{
	return slot == SLOT_OF_MS(ms) || slot == SLOT_OF_MS(ms) + 1;
}

/* Guest opens, IPv4, timestamps; data both ways; FIN close. */
static void case_guest_opens_ts(void)
{
	struct conn c;
	struct snap a, b, m;
	int s;

	conn_init(&c, false, 0, true, 40001);
	snap_take(&c, &a);
	seg(&c, NET_DIR_TX, SYN, 1000, 0, 0, 100, 0);
	sleep_ms(20);
	seg(&c, NET_DIR_RX, SYN | ACK, 5000, 1001, 0, 900, 100);
	seg(&c, NET_DIR_TX, ACK, 1001, 5001, 0, 101, 900);
	snap_take(&c, &b);
	s = only_sample_slot(&a, &b, NET_PATH_NETWORK);
	report(near(s, 20), "guest opens: SYN -> SYN-ACK is one network-path sample of ~20 ms",
	       "slot %d", s);
	s = only_sample_slot(&a, &b, NET_PATH_GUEST);
	report(s >= 0 && s <= 22, "guest opens: SYN-ACK -> ACK is one guest-path sample (< 4 ms)",
	       "slot %d", s);
	report(DELTA(a, b, NET_DIR_TX, tcp_opened) == 1 && DELTA(a, b, NET_DIR_RX, tcp_opened) == 0,
	       "guest opens: one connection opened by the guest", "tx %llu rx %llu",
	       (unsigned long long)DELTA(a, b, NET_DIR_TX, tcp_opened),
	       (unsigned long long)DELTA(a, b, NET_DIR_RX, tcp_opened));
	report(CTR(a, b, NET_TCP_FLOWS_CREATED) == 1 && b.flows == a.flows + 1,
	       "guest opens: one flow made", "created %llu live %ld -> %ld",
	       (unsigned long long)CTR(a, b, NET_TCP_FLOWS_CREATED), a.flows, b.flows);

	/* Request (TSval 102), answered 10 ms later echoing it. */
	seg(&c, NET_DIR_TX, PSH | ACK, 1001, 5001, 100, 102, 900);
	sleep_ms(10);
	seg(&c, NET_DIR_RX, PSH | ACK, 5001, 1101, 300, 910, 102);
	/* The guest acks at once, echoing 910: a guest-path sample. */
	seg(&c, NET_DIR_TX, ACK, 1101, 5301, 0, 103, 910);
	/* A duplicate ack echoing 102 again: no second sample for one value. */
	seg(&c, NET_DIR_RX, ACK, 5301, 1101, 0, 911, 102);
	snap_take(&c, &m);
	s = only_sample_slot(&b, &m, NET_PATH_NETWORK);
	report(near(s, 10), "timestamps: TSval 102 echoed after ~10 ms is one network-path sample",
	       "slot %d", s);
	s = only_sample_slot(&b, &m, NET_PATH_GUEST);
	report(s >= 0 && s <= 22, "timestamps: the guest's echo of 910 is one guest-path sample",
	       "slot %d", s);
	report(DELTA(b, m, NET_DIR_TX, tcp_retransmits) + DELTA(b, m, NET_DIR_RX, tcp_retransmits) == 0,
	       "timestamps: no retransmits in an in-order exchange", "tx %llu rx %llu",
	       (unsigned long long)DELTA(b, m, NET_DIR_TX, tcp_retransmits),
	       (unsigned long long)DELTA(b, m, NET_DIR_RX, tcp_retransmits));

	/* Close: guest FIN, peer FIN-ACK, guest's last ACK. */
	seg(&c, NET_DIR_TX, FIN | ACK, 1101, 5301, 0, 104, 911);
	seg(&c, NET_DIR_RX, FIN | ACK, 5301, 1102, 0, 912, 104);
	snap_take(&c, &b);
	report(b.flows == m.flows, "close: the flow stays until the last ACK", "live %ld -> %ld",
	       m.flows, b.flows);
	seg(&c, NET_DIR_TX, ACK, 1102, 5302, 0, 105, 912);
	snap_take(&c, &b);
	report(b.flows == m.flows - 1 && CTR(m, b, NET_TCP_FLOWS_CLOSED) == 1,
	       "close: the last ACK removes the flow", "live %ld -> %ld closed +%llu", m.flows,
	       b.flows, (unsigned long long)CTR(m, b, NET_TCP_FLOWS_CLOSED));
	/* A late pure ACK must not bring it back. */
	seg(&c, NET_DIR_RX, ACK, 5302, 1102, 0, 913, 105);
	snap_take(&c, &m);
	report(m.flows == b.flows && CTR(b, m, NET_TCP_FLOWS_CREATED) == 0,
	       "close: a pure ACK of an unknown flow makes no flow", "live %ld -> %ld", b.flows,
	       m.flows);
}

/* Peer opens, IPv6, timestamps. */
static void case_peer_opens_v6(void)
{
	struct conn c;
	struct snap a, b;
	int s;

	conn_init(&c, true, 0, true, 22);
	snap_take(&c, &a);
	seg(&c, NET_DIR_RX, SYN, 7000, 0, 0, 50, 0);
	seg(&c, NET_DIR_TX, SYN | ACK, 3000, 7001, 0, 400, 50);
	sleep_ms(20);
	seg(&c, NET_DIR_RX, ACK, 7001, 3001, 0, 51, 400);
	snap_take(&c, &b);
	s = only_sample_slot(&a, &b, NET_PATH_GUEST);
	report(s >= 0 && s <= 22, "IPv6, peer opens: SYN -> SYN-ACK is one guest-path sample",
	       "slot %d", s);
	s = only_sample_slot(&a, &b, NET_PATH_NETWORK);
	report(near(s, 20), "IPv6, peer opens: SYN-ACK -> ACK is one ~20 ms network-path sample",
	       "slot %d", s);
	report(DELTA(a, b, NET_DIR_RX, tcp_opened) == 1 && DELTA(a, b, NET_DIR_TX, tcp_opened) == 0,
	       "IPv6, peer opens: one connection opened by the peer", "rx %llu tx %llu",
	       (unsigned long long)DELTA(a, b, NET_DIR_RX, tcp_opened),
	       (unsigned long long)DELTA(a, b, NET_DIR_TX, tcp_opened));
}

/*
 * No timestamps, one 802.1Q tag: sequence/ack samples, and a
 * retransmission that cancels the pending one (Karn).
 */
static void case_seq_no_ts_vlan(void)
{
	struct conn c;
	struct snap a, b, m;
	int s;

	conn_init(&c, false, 1, false, 40002);
	seg(&c, NET_DIR_TX, SYN, 100, 0, 0, 0, 0);
	seg(&c, NET_DIR_RX, SYN | ACK, 900, 101, 0, 0, 0);
	seg(&c, NET_DIR_TX, ACK, 101, 901, 0, 0, 0);
	snap_take(&c, &a);
	report(a.st[NET_DIR_TX].tcp_opened == 1 &&
		       samples(&a.st[NET_PATH_NETWORK]) == 1 && samples(&a.st[NET_PATH_GUEST]) == 1,
	       "VLAN, no timestamps: handshake opened by the guest, one sample per path",
	       "opened %llu network %llu guest %llu", (unsigned long long)a.st[NET_DIR_TX].tcp_opened,
	       (unsigned long long)samples(&a.st[NET_PATH_NETWORK]),
	       (unsigned long long)samples(&a.st[NET_PATH_GUEST]));

	seg(&c, NET_DIR_TX, PSH | ACK, 101, 901, 100, 0, 0);
	sleep_ms(5);
	seg(&c, NET_DIR_RX, ACK, 901, 151, 0, 0, 0); /* acks half: not yet */
	seg(&c, NET_DIR_RX, PSH | ACK, 901, 201, 200, 0, 0);
	seg(&c, NET_DIR_TX, ACK, 201, 1101, 0, 0, 0);
	snap_take(&c, &b);
	s = only_sample_slot(&a, &b, NET_PATH_NETWORK);
	report(near(s, 5), "no timestamps: data acked after ~5 ms is one network-path sample",
	       "slot %d", s);
	s = only_sample_slot(&a, &b, NET_PATH_GUEST);
	report(s >= 0 && s <= 22, "no timestamps: the guest's ack is one guest-path sample",
	       "slot %d", s);

	/* Sent, resent, acked: the ack could answer either copy. */
	seg(&c, NET_DIR_TX, PSH | ACK, 201, 1101, 100, 0, 0);
	seg(&c, NET_DIR_TX, PSH | ACK, 201, 1101, 100, 0, 0);
	seg(&c, NET_DIR_RX, ACK, 1101, 301, 0, 0, 0);
	snap_take(&c, &m);
	report(DELTA(b, m, NET_DIR_TX, tcp_retransmits) == 1 &&
		       DELTA(b, m, NET_DIR_RX, tcp_retransmits) == 0,
	       "no timestamps: a resent segment from the guest is one tx retransmit",
	       "tx %llu rx %llu", (unsigned long long)DELTA(b, m, NET_DIR_TX, tcp_retransmits),
	       (unsigned long long)DELTA(b, m, NET_DIR_RX, tcp_retransmits));
	report(samples(&m.st[NET_PATH_NETWORK]) == samples(&b.st[NET_PATH_NETWORK]),
	       "no timestamps: no sample for a retransmitted range (Karn)", "network %llu -> %llu",
	       (unsigned long long)samples(&b.st[NET_PATH_NETWORK]),
	       (unsigned long long)samples(&m.st[NET_PATH_NETWORK]));
}

/*
 * Out of order versus retransmitted, from the peer, two tags (802.1ad +
 * 802.1Q). The handshake's network sample (~20 ms) sets the threshold to
 * ~10 ms: a gap filled at once is reordering; filled after 15 ms, a
 * retransmission; a segment seen twice, a retransmission.
 */
static void case_reorder(void)
{
	struct conn c;
	struct snap a, b;

	conn_init(&c, false, 2, true, 40003);
	seg(&c, NET_DIR_TX, SYN, 1, 0, 0, 10, 0);
	sleep_ms(20);
	seg(&c, NET_DIR_RX, SYN | ACK, 1000, 2, 0, 20, 10);
	seg(&c, NET_DIR_TX, ACK, 2, 1001, 0, 11, 20);
	snap_take(&c, &a);
	report(a.st[NET_DIR_TX].tcp_opened == 1, "two VLAN tags: the handshake is parsed",
	       "opened %llu", (unsigned long long)a.st[NET_DIR_TX].tcp_opened);
	seg(&c, NET_DIR_RX, ACK, 1001, 2, 100, 21, 11);
	seg(&c, NET_DIR_RX, ACK, 1201, 2, 100, 21, 11); /* gap 1101..1201 */
	seg(&c, NET_DIR_RX, ACK, 1101, 2, 100, 21, 11); /* fills it at once */
	snap_take(&c, &b);
	report(DELTA(a, b, NET_DIR_RX, tcp_retransmits) == 0,
	       "out of order: a gap filled at once is not a retransmit", "rx %llu",
	       (unsigned long long)DELTA(a, b, NET_DIR_RX, tcp_retransmits));
	seg(&c, NET_DIR_RX, ACK, 1401, 2, 100, 22, 11); /* gap 1301..1401 */
	sleep_ms(15);
	seg(&c, NET_DIR_RX, ACK, 1301, 2, 100, 30, 11); /* filled late: resent */
	seg(&c, NET_DIR_RX, ACK, 1401, 2, 100, 30, 11); /* seen before */
	snap_take(&c, &a);
	report(DELTA(b, a, NET_DIR_RX, tcp_retransmits) == 2 &&
		       DELTA(b, a, NET_DIR_TX, tcp_retransmits) == 0,
	       "retransmits: a late gap fill and a duplicate are two rx retransmits",
	       "rx %llu tx %llu", (unsigned long long)DELTA(b, a, NET_DIR_RX, tcp_retransmits),
	       (unsigned long long)DELTA(b, a, NET_DIR_TX, tcp_retransmits));
}

/* SYN sent twice: a retransmit, and no handshake sample for that path. */
static void case_syn_retransmit(void)
{
	struct conn c;
	struct snap a, b;

	conn_init(&c, false, 0, true, 40004);
	snap_take(&c, &a);
	seg(&c, NET_DIR_TX, SYN, 555, 0, 0, 70, 0);
	seg(&c, NET_DIR_TX, SYN, 555, 0, 0, 1070, 0);
	seg(&c, NET_DIR_RX, SYN | ACK, 9000, 556, 0, 80, 1070);
	seg(&c, NET_DIR_TX, ACK, 556, 9001, 0, 1071, 80);
	snap_take(&c, &b);
	report(DELTA(a, b, NET_DIR_TX, tcp_retransmits) == 1, "SYN sent twice: one tx retransmit",
	       "tx %llu", (unsigned long long)DELTA(a, b, NET_DIR_TX, tcp_retransmits));
	report(samples(&b.st[NET_PATH_NETWORK]) == 0 && samples(&b.st[NET_PATH_GUEST]) == 1 &&
		       b.st[NET_DIR_TX].tcp_opened == 1,
	       "SYN sent twice: no network-path handshake sample, the guest's still counts",
	       "network %llu guest %llu opened %llu",
	       (unsigned long long)samples(&b.st[NET_PATH_NETWORK]),
	       (unsigned long long)samples(&b.st[NET_PATH_GUEST]),
	       (unsigned long long)b.st[NET_DIR_TX].tcp_opened);
}

/* RST from the peer; a flow first seen mid-stream. */
static void case_rst_midstream(void)
{
	struct conn c;
	struct snap a, b;

	conn_init(&c, false, 0, true, 40005);
	snap_take(&c, &a);
	seg(&c, NET_DIR_RX, ACK, 100, 200, 0, 5, 6); /* pure ACK: nothing */
	snap_take(&c, &b);
	report(CTR(a, b, NET_TCP_FLOWS_CREATED) == 0 && b.flows == a.flows,
	       "mid-stream: a pure ACK of an unknown flow makes no flow", "created %llu",
	       (unsigned long long)CTR(a, b, NET_TCP_FLOWS_CREATED));
	seg(&c, NET_DIR_TX, PSH | ACK, 200, 100, 50, 7, 5);
	snap_take(&c, &b);
	report(CTR(a, b, NET_TCP_FLOWS_CREATED) == 1 && CTR(a, b, NET_TCP_FLOWS_MIDSTREAM) == 1 &&
		       b.flows == a.flows + 1 && b.st[NET_DIR_TX].tcp_opened == 0,
	       "mid-stream: data of an unknown flow makes one, counted mid-stream, not opened",
	       "created %llu midstream %llu live %ld -> %ld",
	       (unsigned long long)CTR(a, b, NET_TCP_FLOWS_CREATED),
	       (unsigned long long)CTR(a, b, NET_TCP_FLOWS_MIDSTREAM), a.flows, b.flows);
	seg(&c, NET_DIR_RX, RST | ACK, 100, 250, 0, 8, 7);
	snap_take(&c, &a);
	report(DELTA(b, a, NET_DIR_RX, tcp_resets) == 1 && DELTA(b, a, NET_DIR_TX, tcp_resets) == 0 &&
		       a.flows == b.flows - 1 && CTR(b, a, NET_TCP_FLOWS_CLOSED) == 1,
	       "RST from the peer: one rx reset, the flow is gone", "rx %llu tx %llu live %ld -> %ld",
	       (unsigned long long)DELTA(b, a, NET_DIR_RX, tcp_resets),
	       (unsigned long long)DELTA(b, a, NET_DIR_TX, tcp_resets), b.flows, a.flows);
}

/* Frames that are not TCP, or whose headers cannot be read. */
static void case_unparsed(void)
{
	static const unsigned char mac_a[6] = { 0x52, 0x54, 0, 0, 0, 1 }, mac_b[6] = { 0x52, 0x54, 0, 0, 0, 2 };
	static const unsigned char a6[16] = { 0xfd, [15] = 2 }, b6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	static const unsigned char a4[4] = { 10, 0, 0, 2 }, b4[4] = { 192, 0, 2, 1 };
	unsigned char v6_hbh[128], trunc[64], udp[128], *hbh;
	size_t n_hbh, n_trunc, n_udp;
	struct pktgen pg;

	/* IPv6, a hop-by-hop header (next: TCP, PadN), then a SYN. */
	pktgen_init(&pg, v6_hbh, sizeof(v6_hbh));
	pktgen_eth(&pg, mac_a, mac_b);
	pktgen_ipv6(&pg, a6, b6, 0 /* hop-by-hop */);
	hbh = pktgen_push(&pg, 8);
	if (hbh)
		memcpy(hbh, "\x06\x00\x01\x04\x00\x00\x00\x00", 8);
	pktgen_tcp(&pg, 40001, 443, 1, 0, SYN, 0);
	n_hbh = pktgen_finish(&pg);
	/* IPv4 saying TCP, with 10 bytes where its 20-byte header should be. */
	pktgen_init(&pg, trunc, sizeof(trunc));
	pktgen_eth(&pg, mac_a, mac_b);
	pktgen_ipv4(&pg, a4, b4, 6);
	pktgen_payload(&pg, 10, 0);
	n_trunc = pktgen_finish(&pg);
	pktgen_init(&pg, udp, sizeof(udp));
	pktgen_eth(&pg, mac_a, mac_b);
	pktgen_ipv4(&pg, a4, b4, 17);
	pktgen_udp(&pg, 40000, 53);
	pktgen_payload(&pg, 18, 0);
	n_udp = pktgen_finish(&pg);
	struct conn c;
	struct snap a, b;
	int retval, same, err = 0;

	conn_init(&c, false, 0, true, 40006);
	snap_take(&c, &a);
	err |= run(net_prog_fd(&np, true), ifindex, v6_hbh, (unsigned)n_hbh, &retval, &same);
	err |= run(net_prog_fd(&np, true), ifindex, trunc, (unsigned)n_trunc, &retval, &same);
	snap_take(&c, &b);
	report(!err && CTR(a, b, NET_ERR_NOT_PARSED) == 2 && CTR(a, b, NET_TCP_FLOWS_CREATED) == 0,
	       "IPv6 with an extension header and a truncated TCP header: two frames not parsed",
	       "err %d not parsed %llu", err, (unsigned long long)CTR(a, b, NET_ERR_NOT_PARSED));
	err = run(net_prog_fd(&np, false), ifindex, udp, (unsigned)n_udp, &retval, &same);
	snap_take(&c, &a);
	report(!err && same && retval == TC_ACT_UNSPEC && CTR(b, a, NET_ERR_NOT_PARSED) == 0 &&
		       CTR(b, a, NET_TCP_FLOWS_CREATED) == 0,
	       "UDP: passed unchanged, not a parse failure, no flow", "err %d not parsed %llu", err,
	       (unsigned long long)CTR(b, a, NET_ERR_NOT_PARSED));
}

int main(void)
{
	int tap_fd, err;

	err = net_probe_open(&np, &(struct net_sizes){ .vms = 16, .ifaces = 16, .flows = 1024 },
			     TC_HOOK_AUTO, NULL);
	if (err) {
		printf("not ok 1 - load the network probe\n#   %s\n", strerror(-err));
		return 1;
	}
	tap_fd = tapdev_open("vmpt-tcprun");
	ifindex = (int)if_nametoindex("vmpt-tcprun");
	if (tap_fd < 0 || !ifindex) {
		printf("not ok 1 - create a tap device\n#   %s\n", strerror(-tap_fd));
		return 1;
	}
	case_guest_opens_ts();
	case_peer_opens_v6();
	case_seq_no_ts_vlan();
	case_reorder();
	case_syn_retransmit();
	case_rst_midstream();
	case_unparsed();
	close(tap_fd);
	net_probe_close(&np);
	printf("1..%d\n", n_test);
	return n_failed ? 1 : 0;
}
