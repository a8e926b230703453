/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TCP flow tracking in the tap programs (included by net.bpf.c): passive
 * RTT per path, retransmits, resets and connections, from what crosses
 * the tap. No guest agent, nothing per frame to user space.
 *
 * RTT, both paths at once (see NET_PATH_* in vmprobe/net.h):
 * - the handshake gives one sample per path: SYN -> SYN-ACK times the
 *   opener's side, SYN-ACK -> ACK the other;
 * - then TCP timestamps, as passive ping does: the first time a TSval
 *   passes one way it is remembered, the first segment coming back that
 *   echoes it (TSecr) closes the sample. One pending value per direction
 *   and each value timed once, so a sample never spans two values and long
 *   flows give samples all along, not only their first round trips. An
 *   echo of a later value means ours will never be echoed: dropped, no
 *   sample. Pure ACKs are timed too (in a download they are all the
 *   guest sends), but a segment with data takes their place.
 * - a flow without timestamps times one sequence range per direction
 *   until an ack covers it; a retransmission of that range cancels the
 *   sample (Karn: its ack could answer either copy).
 *
 * Retransmits: a segment carrying sequence space already seen on the tap.
 * One gap in the sequence space is remembered per direction: a segment
 * filling it is out of order (not counted) if it arrives within half the
 * flow's network RTT of the gap opening, a retransmission otherwise —
 * the sender cannot resend before hearing of the loss, which takes a
 * round trip (1 ms when no RTT is known yet).
 *
 * The two directions of a flow may run on two CPUs at once; the state is
 * not locked, so such a race can lose a sample, never invent one.
 */
#ifndef VMPROBE_TCP_BPF_H
#define VMPROBE_TCP_BPF_H

VMPROBE_MAP(net_flows, BPF_MAP_TYPE_LRU_HASH, struct net_flow_key, struct net_flow,
	    NET_DEFAULT_MAX_FLOWS);

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

struct tcp_seg {
	__u32 seq;
	__u32 ack;
	__u32 len; /* sequence space: payload, +1 for SYN, +1 for FIN */
	__u32 tsval;
	__u32 tsecr;
	__u8 flags;
	bool has_ts;
};

enum seg_kind { SEG_NEW, SEG_RETRANS, SEG_REORDER };

static __always_inline bool seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline __u32 load_be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static __always_inline void map_v4(__u32 out[4], __u32 addr)
{
	out[2] = bpf_htonl(0xffff);
	out[3] = addr;
}

/*
 * Past Ethernet, up to two VLAN tags and the IP header: *data is then the
 * TCP header, *l4len its length with payload, key's addresses set (guest
 * side first). 0: TCP; 1: not TCP (or a later fragment); -1: headers that
 * cannot be read.
 */
static __always_inline int l3_parse(void **data, void *end, __u32 dir, struct net_flow_key *key,
				    __u32 *l4len)
{
	struct ethhdr *eth = *data;
	__u32 *g_addr, *p_addr;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return 1;
	proto = eth->h_proto;
	*data += sizeof(*eth);
	/* Up to two tags (802.1ad + 802.1Q); offloaded tags are not in the data. */
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = *data;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return -1;
		proto = vh->h_vlan_encapsulated_proto;
		*data += sizeof(*vh);
	}
	g_addr = dir == NET_DIR_TX ? key->guest_addr : key->peer_addr; /* the source */
	p_addr = dir == NET_DIR_TX ? key->peer_addr : key->guest_addr; /* the destination */
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = *data;
		__u32 ihl;

		if ((void *)(ip + 1) > end)
			return -1;
		if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
			return 1;
		ihl = ip->ihl * 4;
		*l4len = bpf_ntohs(ip->tot_len);
		if (ihl < sizeof(*ip) || *l4len < ihl)
			return -1;
		*l4len -= ihl;
		map_v4(g_addr, ip->saddr);
		map_v4(p_addr, ip->daddr);
		*data += ihl;
		return 0;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = *data;

		if ((void *)(ip6 + 1) > end)
			return -1;
		if (ip6->nexthdr != IPPROTO_TCP) {
			switch (ip6->nexthdr) {
			case 0: case 43: case 44: case 50: case 51: case 60: /* extension headers */
				return -1;
			}
			return 1;
		}
		*l4len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(g_addr, &ip6->saddr, 16);
		__builtin_memcpy(p_addr, &ip6->daddr, 16);
		*data += sizeof(*ip6);
		return 0;
	}
	return 1;
}

/* The timestamps option, if the segment carries one (opt..oend, within end). */
static __always_inline void tcp_options(__u8 *opt, __u8 *oend, void *end, __u32 doff,
					struct tcp_seg *seg)
{
	/* Most segments: NOP, NOP, timestamps. */
	if (doff >= 32 && opt + 12 <= (__u8 *)end && load_be32(opt) == 0x0101080a) {
		seg->tsval = load_be32(opt + 4);
		seg->tsecr = load_be32(opt + 8);
		seg->has_ts = true;
		return;
	}
	for (int i = 0; i < 10; i++) {
		__u8 kind, olen;

		if (opt + 2 > oend || opt + 2 > (__u8 *)end)
			break;
		kind = opt[0];
		if (kind == 0) /* end of options */
			break;
		if (kind == 1) { /* NOP */
			opt++;
			continue;
		}
		olen = opt[1];
		if (kind == 8 && olen == 10) {
			if (opt + 10 > oend || opt + 10 > (__u8 *)end)
				break;
			seg->tsval = load_be32(opt + 2);
			seg->tsecr = load_be32(opt + 6);
			seg->has_ts = true;
			break;
		}
		if (olen < 2)
			break;
		opt += olen;
	}
}

/*
 * Reads the frame's TCP header into seg and its connection into key,
 * guest side first. 0: a TCP segment; 1: not TCP (or a later fragment);
 * -1: an IP frame whose headers cannot be read (truncated, not in the
 * linear part, IPv6 extension headers).
 */
static __always_inline int tcp_parse(struct __sk_buff *skb, __u32 dir, struct net_flow_key *key,
				     struct tcp_seg *seg)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct tcphdr *th;
	__u32 l4len = 0, doff;
	int r = l3_parse(&data, end, dir, key, &l4len);

	if (r)
		return r;
	th = data;
	if ((void *)(th + 1) > end)
		return -1;
	doff = th->doff * 4;
	if (doff < sizeof(*th) || doff > l4len)
		return -1;
	if (dir == NET_DIR_TX) {
		key->guest_port = th->source;
		key->peer_port = th->dest;
	} else {
		key->guest_port = th->dest;
		key->peer_port = th->source;
	}
	seg->seq = bpf_ntohl(th->seq);
	seg->ack = bpf_ntohl(th->ack_seq);
	seg->flags = ((__u8 *)th)[13];
	seg->len = l4len - doff + !!(seg->flags & TCPF_SYN) + !!(seg->flags & TCPF_FIN);
	tcp_options((__u8 *)(th + 1), (__u8 *)th + doff, end, doff, seg);
	return 0;
}

/*
 * The clock, read once per frame and only if the frame needs it: most
 * segments neither start nor close a sample (bpf_ktime_get_ns costs tens
 * of ns in a VM).
 */
static __always_inline __u64 clock_once(__u64 *now)
{
	if (!*now)
		*now = bpf_ktime_get_ns();
	return *now;
}

/*
 * An RTT sample, closed by a segment going `dir`: it lands in st, that
 * direction's cell (see NET_PATH_*), shared by all CPUs. Its stamps may
 * come from two CPUs (a VM's rx and tx): a "negative" one is 0.
 */
static __always_inline void rtt_sample(struct net_flow *f, struct net_tcp_cell *st, __u32 dir,
				       __u64 ns)
{
	unskew_ns(&ns);
	__sync_fetch_and_add(&st->rtt_sum_ns, ns);
	__sync_fetch_and_add(&st->rtt_slots[time_slot(ns, NET_RTT_SLOTS)], 1);
	if (dir == NET_PATH_NETWORK)
		f->net_rtt_us = ns / 1000 < 0xffffffff ? ns / 1000 : 0xffffffff;
}

/* A new entry, as `init` says; 0 or -1 (counted). */
static __always_inline int flow_new(struct net_flow_key *key, const struct net_flow *init)
{
	if (bpf_map_update_elem(&net_flows, key, init, BPF_ANY)) {
		count_error(NET_TCP_FLOWS_FAILED);
		return -1;
	}
	count_error(NET_TCP_FLOWS_CREATED);
	return 0;
}

static __always_inline void flow_close(struct net_flow_key *key)
{
	if (!bpf_map_delete_elem(&net_flows, key))
		count_error(NET_TCP_FLOWS_CLOSED);
}

/* Where a segment carrying sequence space falls; updates nxt and the gap. */
static __always_inline int seq_classify(struct net_flow *f, const struct tcp_seg *seg, __u32 dir,
					__u64 *now)
{
	__u32 end = seg->seq + seg->len;

	if (!(f->flags & NET_FLOW_NXT(dir))) {
		f->nxt[dir] = end;
		f->flags |= NET_FLOW_NXT(dir);
		return SEG_NEW;
	}
	if (!seq_before(seg->seq, f->nxt[dir])) {
		if (seg->seq != f->nxt[dir] && !(f->flags & NET_FLOW_HOLE(dir))) {
			f->hole_lo[dir] = f->nxt[dir];
			f->hole_hi[dir] = seg->seq;
			f->hole_ns[dir] = clock_once(now);
			f->flags |= NET_FLOW_HOLE(dir);
		}
		f->nxt[dir] = end;
		return SEG_NEW;
	}
	if ((f->flags & NET_FLOW_HOLE(dir)) && !seq_before(seg->seq, f->hole_lo[dir]) &&
	    !seq_before(f->hole_hi[dir], end)) {
		__u64 reorder_ns = f->net_rtt_us ? (__u64)f->net_rtt_us * 500 : 1000000;
		__u64 since = clock_once(now) - f->hole_ns[dir];
		int kind;

		unskew_ns(&since); /* the hole seen on a CPU whose clock is ahead: just now */
		kind = since < reorder_ns ? SEG_REORDER : SEG_RETRANS;

		if (seg->seq == f->hole_lo[dir])
			f->hole_lo[dir] = end;
		else if (end == f->hole_hi[dir])
			f->hole_hi[dir] = seg->seq;
		else
			f->flags &= ~NET_FLOW_HOLE(dir); /* one gap only: forget it */
		if (!seq_before(f->hole_lo[dir], f->hole_hi[dir]))
			f->flags &= ~NET_FLOW_HOLE(dir);
		return kind;
	}
	if (seq_before(f->nxt[dir], end))
		f->nxt[dir] = end;
	return SEG_RETRANS;
}

/* SYN or SYN-ACK. */
static __always_inline void tcp_syn(struct net_flow *f, struct net_flow_key *key,
				    const struct tcp_seg *seg, __u32 dir,
				    struct net_tcp_cell *st, __u64 now)
{
	__u32 o = dir ^ 1;

	/* The same SYN or SYN-ACK again: no handshake sample then (Karn). */
	if (f && (f->flags & NET_FLOW_NXT(dir)) && seg->seq + 1 == f->nxt[dir]) {
		__sync_fetch_and_add(&st->tcp_retransmits, 1);
		if (f->state != NET_FLOW_ESTABLISHED)
			f->hs_ns = 0;
		return;
	}
	if (!(seg->flags & TCPF_ACK)) {
		struct net_flow init = {};

		if (f) /* the tuple is reused by a new connection */
			flow_close(key);
		init.state = NET_FLOW_SYN_SENT;
		init.opener = dir;
		init.hs_ns = now;
		init.nxt[dir] = seg->seq + 1;
		init.flags = NET_FLOW_NXT(dir) | (seg->has_ts ? NET_FLOW_TS : 0);
		flow_new(key, &init);
		return;
	}
	if (!f || f->state != NET_FLOW_SYN_SENT || f->opener != o || seg->ack != f->nxt[o])
		return;
	if (f->hs_ns)
		rtt_sample(f, st, dir, now - f->hs_ns);
	f->state = NET_FLOW_SYN_RCVD;
	f->hs_ns = now;
	f->nxt[dir] = seg->seq + 1;
	f->flags |= NET_FLOW_NXT(dir);
	if (!seg->has_ts) /* timestamps are on only if both sides offer them */
		f->flags &= ~NET_FLOW_TS;
}

/* A flow first seen after its handshake: made from a data segment only. */
static __always_inline struct net_flow *flow_midstream(struct net_flow_key *key,
						       const struct tcp_seg *seg)
{
	struct net_flow init = {};

	/* Pure ACKs and FINs of unknown flows are ends, not beginnings. */
	if (seg->len <= !!(seg->flags & TCPF_FIN) || !(seg->flags & TCPF_ACK))
		return NULL;
	init.state = NET_FLOW_ESTABLISHED;
	init.opener = NET_DIR_MAX;
	init.flags = seg->has_ts ? NET_FLOW_TS : 0;
	if (flow_new(key, &init))
		return NULL;
	count_error(NET_TCP_FLOWS_MIDSTREAM);
	return bpf_map_lookup_elem(&net_flows, key);
}

/* An ACK from dir: the handshake's end, or the answer to the other side's pending samples. */
static __always_inline void tcp_acked(struct net_flow *f, const struct tcp_seg *seg, __u32 dir,
				      struct net_tcp_cell *st, __u64 *now)
{
	__u32 o = dir ^ 1;

	if (f->state == NET_FLOW_SYN_RCVD && f->opener == dir && seg->ack == f->nxt[o]) {
		if (f->hs_ns)
			rtt_sample(f, st, dir, clock_once(now) - f->hs_ns);
		f->hs_ns = 0;
		f->state = NET_FLOW_ESTABLISHED;
		__sync_fetch_and_add(&st->tcp_opened, 1);
	}
	if (seg->has_ts && f->ts_ns[o]) {
		if (seg->tsecr == f->tsval[o]) {
			rtt_sample(f, st, dir, clock_once(now) - f->ts_ns[o]);
			f->ts_ns[o] = 0;
		} else if (seq_before(f->tsval[o], seg->tsecr)) {
			f->ts_ns[o] = 0;
		}
	}
	if (f->seq_ns[o] && !seq_before(seg->ack, f->seq_end[o])) {
		rtt_sample(f, st, dir, clock_once(now) - f->seq_ns[o]);
		f->seq_ns[o] = 0;
	}
}

/* What dir sends: retransmits, and the samples it starts (by sequence or TSval). */
static __always_inline void tcp_sent(struct net_flow *f, const struct tcp_seg *seg, __u32 dir,
				     struct net_tcp_cell *st, __u64 *now)
{
	if (seg->len) {
		int kind = seq_classify(f, seg, dir, now);

		if (kind == SEG_RETRANS) {
			__sync_fetch_and_add(&st->tcp_retransmits, 1);
			if (f->seq_ns[dir] && seq_before(seg->seq, f->seq_end[dir]))
				f->seq_ns[dir] = 0;
		} else if (kind == SEG_NEW && !(f->flags & NET_FLOW_TS) && !f->seq_ns[dir]) {
			f->seq_end[dir] = seg->seq + seg->len;
			f->seq_ns[dir] = clock_once(now);
		}
	}
	/*
	 * Time this TSval if none is pending, or if the pending one came on a
	 * pure ACK and this segment carries data: data is sure to be answered,
	 * and the answer echoes the newest value, so the older one would only
	 * go stale.
	 */
	if (seg->has_ts && (f->flags & NET_FLOW_TS) && seg->tsval != f->last_tsval[dir] &&
	    (!f->ts_ns[dir] || (seg->len && (f->ts_pure & (1u << dir))))) {
		f->tsval[dir] = seg->tsval;
		f->last_tsval[dir] = seg->tsval;
		f->ts_ns[dir] = clock_once(now);
		if (seg->len)
			f->ts_pure &= ~(1u << dir);
		else
			f->ts_pure |= 1u << dir;
	}
}

static __always_inline void tcp_segment(struct __sk_buff *skb, __u32 slot, __u32 dir,
					struct net_tcp_cell *st)
{
	struct net_flow_key key = {};
	struct tcp_seg seg = {};
	struct net_flow *f;
	__u32 o = dir ^ 1;
	bool fin_before;
	__u64 now = 0;
	int r;

	r = tcp_parse(skb, dir, &key, &seg);
	if (r) {
		if (r < 0)
			count_error(NET_ERR_NOT_PARSED);
		return;
	}
	key.slot = slot;
	if (seg.flags & TCPF_RST) {
		__sync_fetch_and_add(&st->tcp_resets, 1);
		flow_close(&key);
		return;
	}
	f = bpf_map_lookup_elem(&net_flows, &key);
	if (seg.flags & TCPF_SYN) {
		tcp_syn(f, &key, &seg, dir, st, clock_once(&now));
		return;
	}
	if (!f && !(f = flow_midstream(&key, &seg)))
		return;
	if (seg.flags & TCPF_ACK)
		tcp_acked(f, &seg, dir, st, &now);
	tcp_sent(f, &seg, dir, st, &now);
	/* The last ACK: both FINs were seen and this acks the other one. */
	fin_before = (f->flags & NET_FLOW_FIN(dir)) && (f->flags & NET_FLOW_FIN(o));
	if (seg.flags & TCPF_FIN)
		f->flags |= NET_FLOW_FIN(dir);
	if (fin_before && (seg.flags & TCPF_ACK) && seg.ack == f->nxt[o])
		flow_close(&key);
}

/*
 * Most frames are not TCP (ARP, UDP, ...): tell them at a glance, before
 * any state is set up. Truncated IP headers go on to be counted as not
 * parsed; tagged frames and IPv6 other than UDP/ICMPv6 go on to the parser.
 */
static __always_inline bool maybe_tcp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		return (void *)(ip + 1) > end || ip->protocol == IPPROTO_TCP;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		return (void *)(ip6 + 1) > end || (ip6->nexthdr != 17 && ip6->nexthdr != 58);
	}
	return eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD);
}

static __always_inline void tcp_track(struct __sk_buff *skb, __u32 slot, __u32 dir)
{
	__u32 idx = net_tcp_index(slot, dir);
	struct net_tcp_cell *st;

	if (!maybe_tcp(skb))
		return;
	st = bpf_map_lookup_elem(&net_tcp, &idx);
	if (st)
		tcp_segment(skb, slot, dir, st);
}

#endif
