/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Test and bench frames, built the way Cilium's pktgen.h does: a cursor
 * pushes each header in turn (Ethernet, VLAN tags, IPv4 or IPv6, TCP or
 * UDP, payload) and pktgen_finish() fills in what depends on what follows
 * (EtherTypes, lengths, the IPv4 checksum). Every frame of the BPF tests,
 * the bench and the stand-in guests comes from here.
 */
#ifndef VMPROBE_PKTGEN_H
#define VMPROBE_PKTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PKTGEN_FIN 0x01
#define PKTGEN_SYN 0x02
#define PKTGEN_RST 0x04
#define PKTGEN_PSH 0x08
#define PKTGEN_ACK 0x10

/* A local experimental EtherType (IEEE 802): what no program should parse. */
#define PKTGEN_ETH_P_LOCAL 0x88b5

struct pktgen {
	unsigned char *buf;
	size_t cap, len;
	bool overflow;
	size_t type_at;     /* where the next header's EtherType goes */
	size_t l3, l4;      /* offsets of the IP and transport headers, 0 if none */
	bool v6;
	unsigned char proto;
};

static inline void pktgen_put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static inline void pktgen_put32(unsigned char *p, uint32_t v)
{
	pktgen_put16(p, v >> 16);
	pktgen_put16(p + 2, v & 0xffff);
}

static inline void pktgen_init(struct pktgen *pg, unsigned char *buf, size_t cap)
{
	memset(pg, 0, sizeof(*pg));
	pg->buf = buf;
	pg->cap = cap;
}

/* n zeroed bytes at the end of the frame; NULL (and overflow) when it is full. */
static inline unsigned char *pktgen_push(struct pktgen *pg, size_t n)
{
	unsigned char *p;

	if (pg->overflow || pg->len + n > pg->cap) {
		pg->overflow = true;
		return NULL;
	}
	p = pg->buf + pg->len;
	memset(p, 0, n);
	pg->len += n;
	return p;
}

/* Sets the EtherType the last Ethernet or VLAN header announces. */
static inline void pktgen_type(struct pktgen *pg, unsigned ethertype)
{
	if (pg->type_at)
		pktgen_put16(pg->buf + pg->type_at, ethertype);
}

static inline void pktgen_eth(struct pktgen *pg, const unsigned char dst[6],
			      const unsigned char src[6])
{
	unsigned char *p = pktgen_push(pg, 14);

	if (!p)
		return;
	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	pg->type_at = (size_t)(p + 12 - pg->buf);
}

/* A VLAN tag: 0x88a8 (802.1ad, outer) or 0x8100 (802.1Q). */
static inline void pktgen_vlan(struct pktgen *pg, unsigned tpid, unsigned vid)
{
	unsigned char *p = pktgen_push(pg, 4);

	if (!p)
		return;
	pktgen_type(pg, tpid);
	pktgen_put16(p, vid);
	pg->type_at = (size_t)(p + 2 - pg->buf);
}

/* Addresses in network order, 4 bytes each. */
static inline void pktgen_ipv4(struct pktgen *pg, const unsigned char src[4],
			       const unsigned char dst[4], unsigned char proto)
{
	unsigned char *p = pktgen_push(pg, 20);

	if (!p)
		return;
	pktgen_type(pg, 0x0800);
	p[0] = 0x45;
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, src, 4);
	memcpy(p + 16, dst, 4);
	pg->l3 = (size_t)(p - pg->buf);
	pg->proto = proto;
}

/* Addresses 16 bytes each. */
static inline void pktgen_ipv6(struct pktgen *pg, const unsigned char src[16],
			       const unsigned char dst[16], unsigned char next)
{
	unsigned char *p = pktgen_push(pg, 40);

	if (!p)
		return;
	pktgen_type(pg, 0x86dd);
	p[0] = 0x60;
	p[6] = next;
	p[7] = 64;
	memcpy(p + 8, src, 16);
	memcpy(p + 24, dst, 16);
	pg->l3 = (size_t)(p - pg->buf);
	pg->v6 = true;
	pg->proto = next;
}

/* A TCP header with `optlen` bytes of options (a multiple of 4), returned to fill. */
static inline unsigned char *pktgen_tcp(struct pktgen *pg, unsigned sport, unsigned dport,
					uint32_t seq, uint32_t ack, unsigned flags, unsigned optlen)
{
	unsigned char *p = pktgen_push(pg, 20 + optlen);

	if (!p)
		return NULL;
	pktgen_put16(p, sport);
	pktgen_put16(p + 2, dport);
	pktgen_put32(p + 4, seq);
	pktgen_put32(p + 8, ack);
	p[12] = (unsigned char)(((20 + optlen) / 4) << 4);
	p[13] = (unsigned char)flags;
	pktgen_put16(p + 14, 64240);
	pg->l4 = (size_t)(p - pg->buf);
	return p + 20;
}

static inline void pktgen_udp(struct pktgen *pg, unsigned sport, unsigned dport)
{
	unsigned char *p = pktgen_push(pg, 8);

	if (!p)
		return;
	pktgen_put16(p, sport);
	pktgen_put16(p + 2, dport);
	pg->l4 = (size_t)(p - pg->buf);
}

/* n bytes of payload: `fill`, or when fill < 0 a pattern of its offsets. */
static inline void pktgen_payload(struct pktgen *pg, size_t n, int fill)
{
	size_t at = pg->len;
	unsigned char *p = pktgen_push(pg, n);

	for (size_t i = 0; p && i < n; i++)
		p[i] = fill >= 0 ? (unsigned char)fill : (unsigned char)((at + i) * 7 + 3);
}

/* Fills lengths and the IPv4 header checksum; the frame's length, 0 if it overflowed. */
static inline size_t pktgen_finish(struct pktgen *pg)
{
	unsigned char *ip = pg->buf + pg->l3;
	unsigned sum = 0;

	if (pg->overflow)
		return 0;
	if (pg->l4 && pg->proto == 17)
		pktgen_put16(pg->buf + pg->l4 + 4, (unsigned)(pg->len - pg->l4));
	if (pg->l3 && pg->v6) {
		pktgen_put16(ip + 4, (unsigned)(pg->len - pg->l3 - 40));
	} else if (pg->l3) {
		pktgen_put16(ip + 2, (unsigned)(pg->len - pg->l3));
		for (int i = 0; i < 20; i += 2)
			sum += (unsigned)ip[i] << 8 | ip[i + 1];
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		pktgen_put16(ip + 10, ~sum & 0xffff);
	}
	return pg->len;
}

/*
 * An Ethernet frame of exactly `size` bytes carrying `ethertype` and a
 * patterned payload: for tests of frame counting, where no header past
 * Ethernet matters.
 */
static inline size_t pktgen_eth_frame(unsigned char *buf, size_t size, const unsigned char dst[6],
				      const unsigned char src[6], unsigned ethertype)
{
	struct pktgen pg;

	pktgen_init(&pg, buf, size);
	pktgen_eth(&pg, dst, src);
	pktgen_type(&pg, ethertype);
	pktgen_payload(&pg, size > 14 ? size - 14 : 0, -1);
	return pktgen_finish(&pg);
}

#endif
