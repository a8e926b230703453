/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The protobuf side of core/expo.h: only expo.c calls these. */
#ifndef VMPROBE_EXPO_PB_H
#define VMPROBE_EXPO_PB_H

#include "core/expo.h"

/* Writes out the family being built, if any, and starts f. */
void expo_pb_family(struct expo *e, const struct expo_family *f);
/* A counter or gauge sample of the current family. */
void expo_pb_sample(struct expo *e, const char *labels, double v);
/* A histogram of the current family: classic buckets (e->classic) and native, schema 0. */
void expo_pb_histogram(struct expo *e, const char *labels, const __u64 *slots, unsigned nr_slots,
		       const struct hist_range *r, uint64_t sum);
/* Ends the family being written, if any; 0 or -ENOMEM. */
int expo_pb_flush(struct expo *e);
/* Frees what the protobuf writer kept (after the last expo_pb_flush). */
void expo_pb_end(struct expo *e);

/*
 * Splits an escaped label string (`a="x",b="y\"z"`) into at most `max`
 * names and unescaped values, written into buf (of `size`); the number of
 * labels, or -1 if it does not parse or fit.
 */
int expo_pb_split_labels(const char *labels, char *buf, size_t size, const char **names,
			 const char **values, int max);

#endif
