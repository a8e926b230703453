// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Protobuf exposition (libprotobuf-c, proto/metrics.proto): one
 * MetricFamily message per family, length-delimited. Histograms carry
 * native buckets of schema 0 straight from the log2 slots (slot i is the
 * bucket of index i - log2(per_unit): durations count in 2^-30 s, sizes in
 * bytes; slot 0 is the zero bucket, of width one unit) and, when
 * e->classic, the classic buckets of the text formats.
 *
 * A family is packed into the response as it is rendered, a metric at a
 * time (protobuf's repeated fields may be packed piecewise: the family's
 * header fields, each metric as a family of one, then its unit, are the
 * bytes of the whole family), behind room for its length, which is
 * written when the family ends. One metric at a time is held in memory,
 * however many the family has.
 */
#include "core/expo_pb.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.pb-c.h"

typedef Io__Prometheus__Client__MetricFamily PbFamily;
typedef Io__Prometheus__Client__Metric PbMetric;
typedef Io__Prometheus__Client__LabelPair PbLabel;
typedef Io__Prometheus__Client__Histogram PbHistogram;
typedef Io__Prometheus__Client__Bucket PbBucket;
typedef Io__Prometheus__Client__BucketSpan PbSpan;
typedef Io__Prometheus__Client__Timestamp PbTimestamp;

#define MAX_LABELS 16
#define CHUNK (64 * 1024)
/* The longest varint: room left for a family's length. */
#define LENGTH_MAX 10

/* Everything of one metric comes from here, and is reused for the next. */
struct chunk {
	struct chunk *next;
	size_t used;
	_Alignas(16) char data[CHUNK];
};

struct expo_pb {
	PbFamily fam;     /* the family being written: its header fields */
	bool open;        /* one is */
	size_t start;     /* where in the response: its length goes there */
	struct chunk *chunks;
	struct chunk *cur; /* allocating from */
	bool oom;
};

static void *alloc(struct expo_pb *pb, size_t n)
{
	struct chunk *c = pb->cur;

	n = (n + 15) & ~(size_t)15;
	if (n > CHUNK) {
		pb->oom = true;
		return NULL;
	}
	while (c && c->used + n > CHUNK)
		c = c->next;
	if (!c) {
		c = malloc(sizeof(*c));
		if (!c) {
			pb->oom = true;
			return NULL;
		}
		c->next = NULL;
		c->used = 0;
		if (pb->cur)
			pb->cur->next = c;
		else
			pb->chunks = c;
	}
	pb->cur = c;
	c->used += n;
	return memset(c->data + c->used - n, 0, n);
}

/* The next metric reuses the memory of the last. */
static void arena_rewind(struct expo_pb *pb)
{
	for (struct chunk *c = pb->chunks; c; c = c->next)
		c->used = 0;
	pb->cur = pb->chunks;
}

static void arena_free(struct expo_pb *pb)
{
	while (pb->chunks) {
		struct chunk *next = pb->chunks->next;

		free(pb->chunks);
		pb->chunks = next;
	}
	pb->cur = NULL;
}

/* Appends what protobuf-c packs of m to the response. */
static void pack(struct expo *e, const ProtobufCMessage *m)
{
	struct strbuf *sb = e->out;
	size_t n = protobuf_c_message_get_packed_size(m);

	if (!sb_reserve(sb, n))
		return;
	sb->len += protobuf_c_message_pack(m, (uint8_t *)sb->buf + sb->len);
	sb->buf[sb->len] = '\0';
}

/*
 * Ends the family: its unit (field 5 comes after the metrics), then its
 * length before it, as a varint protobuf-c writes (a Length message less
 * its tag byte), where room was left for the longest.
 */
static int write_family(struct expo *e)
{
	struct expo_pb *pb = e->pb;
	Io__Prometheus__Client__Length len = IO__PROMETHEUS__CLIENT__LENGTH__INIT;
	uint8_t varint[1 + LENGTH_MAX];
	struct strbuf *sb = e->out;
	size_t body, n;

	if (!pb->open)
		return 0;
	pb->open = false;
	if (pb->fam.unit) {
		PbFamily unit = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;

		unit.unit = pb->fam.unit;
		pack(e, &unit.base);
	}
	if (sb->oom || pb->oom)
		return -ENOMEM;
	body = sb->len - pb->start - LENGTH_MAX;
	len.has_value = true;
	len.value = body;
	n = protobuf_c_message_pack(&len.base, varint) - 1;
	memmove(sb->buf + pb->start + n, sb->buf + pb->start + LENGTH_MAX, body);
	memcpy(sb->buf + pb->start, varint + 1, n);
	sb->len = pb->start + n + body;
	sb->buf[sb->len] = '\0';
	return 0;
}

int expo_pb_flush(struct expo *e)
{
	return e->pb ? write_family(e) : 0;
}

void expo_pb_end(struct expo *e)
{
	if (!e->pb)
		return;
	arena_free(e->pb);
	free(e->pb);
	e->pb = NULL;
}

void expo_pb_family(struct expo *e, const struct expo_family *f)
{
	static const Io__Prometheus__Client__MetricType types[] = {
		[EXPO_COUNTER] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER,
		[EXPO_GAUGE] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE,
		[EXPO_HISTOGRAM] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM,
	};
	static const char room[LENGTH_MAX];
	struct expo_pb *pb = e->pb;
	PbFamily head;

	if (!pb) {
		pb = e->pb = calloc(1, sizeof(*pb));
		if (!pb) {
			e->out->oom = true;
			return;
		}
	} else if (write_family(e)) {
		e->out->oom = true;
	}
	io__prometheus__client__metric_family__init(&pb->fam);
	pb->fam.name = (char *)f->name;
	pb->fam.help = (char *)f->help;
	pb->fam.has_type = true;
	pb->fam.type = types[f->type];
	if (f->unit[0])
		pb->fam.unit = (char *)f->unit;
	pb->open = true;
	pb->start = e->out->len;
	sb_add(e->out, room, sizeof(room));
	/* The fields before the metrics: name, help, type. */
	head = pb->fam;
	head.unit = NULL;
	pack(e, &head.base);
}

int expo_pb_split_labels(const char *labels, char *buf, size_t size, const char **names,
			 const char **values, int max)
{
	const char *p = labels;
	size_t n = 0;
	int nr = 0;

	while (p && *p) {
		if (nr == max)
			return -1;
		names[nr] = buf + n;
		while (*p && *p != '=') {
			if (n + 1 >= size)
				return -1;
			buf[n++] = *p++;
		}
		if (p[0] != '=' || p[1] != '"')
			return -1;
		buf[n++] = '\0';
		p += 2;
		values[nr] = buf + n;
		for (; *p && *p != '"'; p++) {
			char c = *p;

			if (c == '\\') {
				c = *++p == 'n' ? '\n' : *p;
				if (!*p)
					return -1;
			}
			if (n + 1 >= size)
				return -1;
			buf[n++] = c;
		}
		if (*p != '"' || n + 1 >= size)
			return -1;
		buf[n++] = '\0';
		p++;
		nr++;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return nr;
}

static char *str_dup(struct expo_pb *pb, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = alloc(pb, n);

	return d ? memcpy(d, s, n) : NULL;
}

/*
 * A new metric of the current family with its labels, in the memory of
 * the last one; NULL if out of memory.
 */
static PbMetric *metric_new(struct expo *e, const char *labels)
{
	struct expo_pb *pb = e->pb;
	const char *names[MAX_LABELS], *values[MAX_LABELS];
	char buf[4096];
	int nr = expo_pb_split_labels(labels, buf, sizeof(buf), names, values, MAX_LABELS);
	PbMetric *m;

	if (!pb || !pb->open || nr < 0) {
		if (pb)
			pb->oom = true; /* a label string we wrote ourselves: cannot happen */
		return NULL;
	}
	arena_rewind(pb);
	m = alloc(pb, sizeof(*m));
	if (!m)
		return NULL;
	io__prometheus__client__metric__init(m);
	m->label = alloc(pb, (size_t)(nr ? nr : 1) * sizeof(*m->label));
	if (!m->label)
		return NULL;
	for (int i = 0; i < nr; i++) {
		PbLabel *l = alloc(pb, sizeof(*l));

		if (!l)
			return NULL;
		io__prometheus__client__label_pair__init(l);
		l->name = str_dup(pb, names[i]);
		l->value = str_dup(pb, values[i]);
		if (!l->name || !l->value)
			return NULL;
		m->label[i] = l;
	}
	m->n_label = (size_t)nr;
	return m;
}

/* Packs the metric into the response, as a family of one without its header fields. */
static void metric_write(struct expo *e, PbMetric *m)
{
	PbFamily one = IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;

	one.n_metric = 1;
	one.metric = &m;
	pack(e, &one.base);
}

/* e->created as a Timestamp; NULL when unknown. */
static PbTimestamp *created(struct expo *e)
{
	PbTimestamp *t;

	if (e->created <= 0)
		return NULL;
	t = alloc(e->pb, sizeof(*t));
	if (!t)
		return NULL;
	io__prometheus__client__timestamp__init(t);
	t->has_seconds = t->has_nanos = true;
	t->seconds = (int64_t)e->created;
	t->nanos = (int32_t)((e->created - (double)t->seconds) * 1e9);
	return t;
}

void expo_pb_sample(struct expo *e, const char *labels, double v)
{
	PbMetric *m = metric_new(e, labels);

	if (!m)
		return;
	if (e->family->type == EXPO_COUNTER) {
		Io__Prometheus__Client__Counter *c = alloc(e->pb, sizeof(*c));

		if (!c)
			return;
		io__prometheus__client__counter__init(c);
		c->has_value = true;
		c->value = v;
		c->created_timestamp = created(e);
		m->counter = c;
	} else {
		Io__Prometheus__Client__Gauge *g = alloc(e->pb, sizeof(*g));

		if (!g)
			return;
		io__prometheus__client__gauge__init(g);
		g->has_value = true;
		g->value = v;
		m->gauge = g;
	}
	metric_write(e, m);
}

/* The classic buckets, as the text formats have them (+Inf implied by the count). */
static bool classic_buckets(struct expo_pb *pb, PbHistogram *h, const __u64 *slots,
			    unsigned nr_slots, const struct hist_range *r)
{
	unsigned max = expo_hist_last(r, nr_slots);
	uint64_t cum = 0;

	h->bucket = alloc(pb, (max + 1) * sizeof(*h->bucket));
	if (!h->bucket)
		return false;
	for (unsigned i = 0; i <= max; i++) {
		PbBucket *b;

		cum += slots[i];
		if (i < r->min_slot)
			continue;
		b = alloc(pb, sizeof(*b));
		if (!b)
			return false;
		io__prometheus__client__bucket__init(b);
		b->has_cumulative_count = b->has_upper_bound = true;
		b->cumulative_count = cum;
		b->upper_bound = expo_hist_le(r, i);
		h->bucket[h->n_bucket++] = b;
	}
	return true;
}

/*
 * Native buckets: slot 0 (up to one unit) is the zero bucket, slot i > 0
 * the bucket of index i - log2(per_unit); one span per run of non-empty
 * slots, counts as deltas. The last slot, which holds everything above,
 * stands as the bucket of its index.
 */
static bool native_buckets(struct expo_pb *pb, PbHistogram *h, const __u64 *slots,
			   unsigned nr_slots, const struct hist_range *r)
{
	int shift = __builtin_ctzll(r->per_unit);
	int64_t prev = 0;
	int last = 0; /* index after the last span, relative */
	bool open = false;

	h->has_schema = h->has_zero_threshold = h->has_zero_count = true;
	h->schema = 0;
	h->zero_threshold = ldexp(1.0, -shift);
	h->zero_count = slots[0];
	h->positive_span = alloc(pb, nr_slots * sizeof(*h->positive_span));
	h->positive_delta = alloc(pb, nr_slots * sizeof(*h->positive_delta));
	if (!h->positive_span || !h->positive_delta)
		return false;
	for (unsigned i = 1; i < nr_slots; i++) {
		int index = (int)i - shift;

		if (!slots[i]) {
			open = false;
			continue;
		}
		if (!open) {
			PbSpan *s = alloc(pb, sizeof(*s));

			if (!s)
				return false;
			io__prometheus__client__bucket_span__init(s);
			s->has_offset = s->has_length = true;
			s->offset = h->n_positive_span ? index - last : index;
			h->positive_span[h->n_positive_span++] = s;
			open = true;
		}
		h->positive_span[h->n_positive_span - 1]->length++;
		last = index + 1;
		h->positive_delta[h->n_positive_delta++] = (int64_t)slots[i] - prev;
		prev = (int64_t)slots[i];
	}
	return true;
}

void expo_pb_histogram(struct expo *e, const char *labels, const __u64 *slots, unsigned nr_slots,
		       const struct hist_range *r, uint64_t sum)
{
	PbMetric *m = metric_new(e, labels);
	PbHistogram *h;

	if (!m)
		return;
	h = alloc(e->pb, sizeof(*h));
	if (!h)
		return;
	io__prometheus__client__histogram__init(h);
	h->has_sample_count = h->has_sample_sum = true;
	h->sample_count = expo_hist_count(slots, nr_slots);
	h->sample_sum = expo_hist_sum(r, sum);
	h->created_timestamp = created(e);
	if ((e->classic && !classic_buckets(e->pb, h, slots, nr_slots, r)) ||
	    (e->native && !native_buckets(e->pb, h, slots, nr_slots, r)))
		return;
	m->histogram = h;
	metric_write(e, m);
}
