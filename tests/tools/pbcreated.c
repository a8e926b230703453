// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Test tool: decodes a length-delimited protobuf /metrics body (stdin)
 * with libprotobuf-c and prints one line per counter and histogram:
 * NAME{LABEL="VALUE",...} CREATED, CREATED being its created_timestamp as
 * SECONDS.NANOSECONDS or "none": what tests compare with the _created
 * samples of OpenMetrics. Exits 1 on a body that does not decode.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.pb-c.h"

typedef Io__Prometheus__Client__MetricFamily PbFamily;
typedef Io__Prometheus__Client__Metric PbMetric;

static void print_metric(const char *family, const PbMetric *m)
{
	const Io__Prometheus__Client__Timestamp *t =
		m->counter ? m->counter->created_timestamp :
		m->histogram ? m->histogram->created_timestamp : NULL;

	if (!m->counter && !m->histogram)
		return;
	printf("%s{", family);
	for (size_t i = 0; i < m->n_label; i++)
		printf("%s%s=\"%s\"", i ? "," : "", m->label[i]->name, m->label[i]->value);
	if (t)
		printf("} %lld.%09d\n", (long long)t->seconds, (int)t->nanos);
	else
		printf("} none\n");
}

/* The varint at body[*off] (advanced past it) into *v; false if the body ends in it. */
static bool varint(const uint8_t *body, size_t n, size_t *off, size_t *v)
{
	unsigned shift = 0;
	uint8_t b;

	*v = 0;
	do {
		if (*off >= n || shift > 63)
			return false;
		b = body[(*off)++];
		*v |= (size_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	return true;
}

int main(void)
{
	static uint8_t body[64 << 20];
	size_t n = fread(body, 1, sizeof(body), stdin), off = 0, len;

	while (off < n) {
		PbFamily *f = NULL;

		if (!varint(body, n, &off, &len) || len > n - off ||
		    !(f = io__prometheus__client__metric_family__unpack(NULL, len, body + off))) {
			fprintf(stderr, "pbcreated: the message at byte %zu does not decode\n", off);
			return 1;
		}
		for (size_t i = 0; i < f->n_metric; i++)
			print_metric(f->name, f->metric[i]);
		io__prometheus__client__metric_family__free_unpacked(f, NULL);
		off += len;
	}
	return 0;
}
