// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The stamp beside a probe's pins (core/pin.c): the next serve adopts
 * pinned maps only if their layout hash is its own, so the hash must
 * change with every change a reader would misread (a field added, as
 * drive_stats gained errors; a field moved at the same size; other map
 * sizes) and must not change with the code alone (another build adopts).
 * Checked on one small object built in variants (stamp.bpf.c, built
 * beside this test).
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit.h"

#include "core/pin.h"
#include "version.h"

/* One variant's object (build/tests/stamp_VARIANT.bpf.o), opened, not loaded. */
struct variant {
	char *elf;
	size_t size;
	struct bpf_object *obj;
};

static void variant_open(struct variant *v, const char *name)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f;

	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(path, sizeof(path), "%s/stamp_%s.bpf.o", exe, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: %s (built with the unit tests)", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	v->size = (size_t)ftell(f);
	rewind(f);
	v->elf = malloc(v->size);
	assert_non_null(v->elf);
	assert_int_equal(fread(v->elf, 1, v->size, f), v->size);
	fclose(f);
	v->obj = bpf_object__open_mem(v->elf, v->size, NULL);
	if (!v->obj)
		fail_msg("%s: libbpf cannot open it (%s)", path, strerror(errno));
}

static void variant_close(struct variant *v)
{
	bpf_object__close(v->obj);
	free(v->elf);
}

/* The stamp serve would write for the variant, its map sized to `entries` (0: as built). */
static struct pin_stamp stamp_of(const char *name, __u32 entries, __u32 *value_size)
{
	struct pin_stamp st;
	struct variant v;
	struct bpf_map *m;

	variant_open(&v, name);
	m = bpf_object__find_map_by_name(v.obj, "stamp_stats");
	assert_non_null(m);
	if (entries)
		assert_int_equal(bpf_map__set_max_entries(m, entries), 0);
	if (value_size)
		*value_size = bpf_map__value_size(m);
	pin_stamp_compute(&st, v.obj, v.elf, v.size);
	variant_close(&v);
	return st;
}

static bool same_layout(const struct pin_stamp *a, const struct pin_stamp *b)
{
	return !memcmp(a->layout, b->layout, sizeof(a->layout));
}

static bool same_code(const struct pin_stamp *a, const struct pin_stamp *b)
{
	return !memcmp(a->code, b->code, sizeof(a->code));
}

static void test_the_same_object_stamps_the_same(void **state)
{
	struct pin_stamp a = stamp_of("base", 0, NULL), b = stamp_of("base", 0, NULL);
	static const __u8 zero[sizeof(a.layout)];
	static const char version[] = VMPROBE_VERSION;
	char want[sizeof(a.version)];

	assert_true(memcmp(a.layout, zero, sizeof(zero)) != 0);
	assert_true(same_layout(&a, &b));
	assert_true(same_code(&a, &b));
	/* The version as far as the stamp holds it (a long development version is cut). */
	snprintf(want, sizeof(want), "%.*s", (int)sizeof(want) - 1, version);
	expect_str("the stamp's version", want, a.version);
	expect_int("the stamp's pid", getpid(), a.pid);
}

static void test_a_field_added_is_another_layout(void **state)
{
	struct pin_stamp a = stamp_of("base", 0, NULL), b = stamp_of("errors", 0, NULL);

	assert_false(same_layout(&a, &b));
}

static void test_a_field_moved_at_the_same_size_is_another_layout(void **state)
{
	__u32 size_errors, size_moved;
	struct pin_stamp a = stamp_of("errors", 0, &size_errors),
			 b = stamp_of("moved", 0, &size_moved);

	expect_int("both variants' value size", size_errors, size_moved);
	assert_false(same_layout(&a, &b));
}

static void test_other_map_sizes_are_another_layout(void **state)
{
	struct pin_stamp a = stamp_of("base", 0, NULL), b = stamp_of("base", 16, NULL);

	assert_false(same_layout(&a, &b));
}

static void test_other_code_keeps_the_layout(void **state)
{
	struct pin_stamp a = stamp_of("base", 0, NULL), b = stamp_of("code", 0, NULL);

	assert_true(same_layout(&a, &b));
	assert_false(same_code(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_same_object_stamps_the_same),
		cmocka_unit_test(test_a_field_added_is_another_layout),
		cmocka_unit_test(test_a_field_moved_at_the_same_size_is_another_layout),
		cmocka_unit_test(test_other_map_sizes_are_another_layout),
		cmocka_unit_test(test_other_code_keeps_the_layout),
	};

	libbpf_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
