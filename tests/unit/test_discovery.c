// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Which processes of a /proc the VM table takes (a fake /proc under /tmp):
 * /proc/PID/stat as the kernel writes it (a process with no terminal,
 * a zombie, one in exit), a PID reused by a new process, a VM dropped
 * by an exit event only if it was found before that event, and a scan
 * whose walk of /proc holds the table's lock at no time.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit.h"

#include "core/discovery.h"
#include "core/util.h"

#define PID 4242

static char root[] = "/tmp/vmprobe-unit-proc.XXXXXX";

static void write_proc(const char *what, const char *text, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/%s", root, PID, what);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(len, fwrite(text, 1, len, f));
	fclose(f);
}

/* /proc/PID/stat of a QEMU process: STATE, FLAGS (field 9), START_TIME (22). */
static void write_stat(char state, unsigned long flags, unsigned long long start)
{
	char text[512];
	int n = snprintf(text, sizeof(text),
			 "%d (qemu-system-x86) %c 1 %d %d 0 -1 %lu 100 0 0 0 1 2 0 0 20 0 3 0 %llu "
			 "1000 50 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			 PID, state, PID, PID, flags, start);

	write_proc("stat", text, (size_t)n);
}

static int setup(void **state)
{
	static const char cmdline[] = "qemu-system-x86_64\0-name\0guest=vm1\0";
	char path[256];

	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/%d", root, PID);
	assert_int_equal(0, mkdir(path, 0755));
	snprintf(path, sizeof(path), "%s/%d/ns", root, PID);
	assert_int_equal(0, mkdir(path, 0755));
	snprintf(path, sizeof(path), "%s/%d/ns/net", root, PID);
	assert_int_equal(0, symlink("/proc/self/ns/net", path));
	write_proc("comm", "qemu-system-x86\n", 16);
	write_proc("cmdline", cmdline, sizeof(cmdline));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static void test_stat_says_which_processes_are_vms(void **state)
{
	static const struct {
		const char *what;
		char state;
		unsigned long flags;
		bool vm;
	} rows[] = {
		{ "running, no terminal (tpgid -1)", 'S', 0x400100, true },
		{ "a zombie", 'Z', 0x400100, false },
		{ "its leader in exit (PF_EXITING)", 'S', 0x400104, false },
	};
	struct config c = { .rescan_interval_ms = 500 };
	struct discovery d;

	snprintf(c.proc_root, sizeof(c.proc_root), "%s", root);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		assert_int_equal(0, discovery_init(&d, &c, NULL));
		write_stat(rows[i].state, rows[i].flags, 777);
		expect_int(rows[i].what, rows[i].vm, discovery_scan_pid(&d, PID));
		expect_int(rows[i].what, rows[i].vm, d.vms != NULL);
		discovery_fini(&d);
	}
}

static void test_reused_pid_and_exit_events(void **state)
{
	struct config c = { .rescan_interval_ms = 500 };
	unsigned long long found;
	struct discovery d;
	unsigned gen;

	snprintf(c.proc_root, sizeof(c.proc_root), "%s", root);
	assert_int_equal(0, discovery_init(&d, &c, NULL));
	write_stat('S', 0x400100, 777);
	assert_true(discovery_scan_pid(&d, PID));
	expect_int("the start time is field 22", 777, d.vms->start_time);
	gen = d.table_gen;
	assert_true(discovery_scan_pid(&d, PID));
	expect_int("the same process again: the table is unchanged", gen, d.table_gen);
	write_stat('S', 0x400100, 999);
	assert_true(discovery_scan_pid(&d, PID));
	expect_int("a new process under the PID: the old VM dropped, a new one added", gen + 2,
		   d.table_gen);
	expect_int("the new VM has the new start time", 999, d.vms->start_time);

	found = d.vms->found_ns;
	discovery_forget(&d, PID, found - 1);
	expect_int("an event from before the VM was found leaves it", 1, d.vms != NULL);
	discovery_forget(&d, PID, found + 1);
	expect_int("an event from after drops it", 1, d.vms == NULL);
	discovery_fini(&d);
}

/* A command line longer than the first read (a VM of many devices) is read whole. */
static void test_long_command_line_is_read_whole(void **state)
{
	static const char head[] = "qemu-system-x86_64\0-name\0guest=big\0";
	static const char arg[] = "-global\0virtio-blk-pci.config-wce=off\0";
	static const char tail[] = "-uuid\0c3d4e5f6-a7b8-4c9d-8e0f-112233445566\0";
	size_t reps = 600 * 1024 / (sizeof(arg) - 1), len = sizeof(head) - 1;
	char *text = malloc(len + reps * (sizeof(arg) - 1) + sizeof(tail));
	struct config c = { .rescan_interval_ms = 500 };
	struct discovery d;

	assert_non_null(text);
	memcpy(text, head, len);
	for (size_t i = 0; i < reps; i++, len += sizeof(arg) - 1)
		memcpy(text + len, arg, sizeof(arg) - 1);
	memcpy(text + len, tail, sizeof(tail) - 1);
	len += sizeof(tail) - 1;
	write_proc("cmdline", text, len);
	snprintf(c.proc_root, sizeof(c.proc_root), "%s", root);
	assert_int_equal(0, discovery_init(&d, &c, NULL));
	write_stat('S', 0x400100, 777);
	expect_int("a 600 KiB command line: a VM", 1, discovery_scan_pid(&d, PID));
	assert_non_null(d.vms);
	expect_str("its name", "big", d.vms->name);
	expect_str("and what its last argument says", "c3d4e5f6-a7b8-4c9d-8e0f-112233445566",
		   d.vms->spec.uuid);
	discovery_fini(&d);
	free(text);
	write_proc("cmdline", "qemu-system-x86_64\0-name\0guest=vm1\0",
		   sizeof("qemu-system-x86_64\0-name\0guest=vm1\0"));
}

/* A scan drops the VMs whose process it no longer lists, none if /proc cannot be read. */
static void test_scan_forgets_only_what_it_listed(void **state)
{
	struct config c = { .rescan_interval_ms = 500 };
	struct discovery d;

	snprintf(c.proc_root, sizeof(c.proc_root), "%s", root);
	assert_int_equal(0, discovery_init(&d, &c, NULL));
	write_stat('S', 0x400100, 777);
	discovery_scan(&d);
	expect_int("a scan finds the QEMU process", 1, d.vms != NULL);
	snprintf(c.proc_root, sizeof(c.proc_root), "%s/gone", root);
	discovery_scan(&d);
	expect_int("a /proc that cannot be read forgets no VM", 1, d.vms != NULL);
	snprintf(c.proc_root, sizeof(c.proc_root), "%s", root);
	write_proc("comm", "bash\n", 5);
	discovery_scan(&d);
	expect_int("the last QEMU process gone: the scan drops its VM", 1, d.vms == NULL);
	write_proc("comm", "qemu-system-x86\n", 16);
	discovery_fini(&d);
}

static void *scan_thread(void *arg)
{
	discovery_scan(arg);
	return NULL;
}

/*
 * Another process's comm is a FIFO: the scan's walk blocks on it until the
 * test writes, and meanwhile the table's lock (what /metrics and the exec
 * and exit events take) must be free.
 */
static void test_walk_of_proc_holds_no_lock(void **state)
{
	/* Not this test's own PID, which a scan passes over. */
	pid_t other = getpid() == PID + 1 ? PID + 2 : PID + 1;
	struct config c = { .rescan_interval_ms = 500 };
	char dir[256], fifo[300];
	struct discovery d;
	pthread_t t;
	int fd = -1, locked;

	snprintf(c.proc_root, sizeof(c.proc_root), "%s", root);
	snprintf(dir, sizeof(dir), "%s/%d", root, (int)other);
	snprintf(fifo, sizeof(fifo), "%s/comm", dir);
	assert_int_equal(0, mkdir(dir, 0755));
	assert_int_equal(0, mkfifo(fifo, 0600));
	assert_int_equal(0, discovery_init(&d, &c, NULL));
	write_stat('S', 0x400100, 777);
	assert_int_equal(0, pthread_create(&t, NULL, scan_thread, &d));
	/* Opens once the scan has opened it to read: it is mid-walk. 60 s: a scan that never comes. */
	for (int i = 0; i < 60000 && fd < 0; i++) {
		fd = open(fifo, O_WRONLY | O_NONBLOCK);
		if (fd < 0)
			usleep(1000);
	}
	if (fd < 0)
		fail_msg("the scan did not read the FIFO comm of process %d", (int)other);
	locked = pthread_mutex_trylock(&d.lock);
	if (!locked)
		pthread_mutex_unlock(&d.lock);
	assert_int_equal(5, write(fd, "bash\n", 5));
	close(fd);
	assert_int_equal(0, pthread_join(t, NULL));
	expect_int("the table's lock is free while the scan walks /proc", 0, locked);
	expect_int("the scan found the QEMU process", PID, d.vms ? d.vms->pid : -1);
	expect_int("and only it", 1, d.vms && !d.vms->next);
	discovery_fini(&d);
	unlink(fifo);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat_says_which_processes_are_vms),
		cmocka_unit_test(test_reused_pid_and_exit_events),
		cmocka_unit_test(test_scan_forgets_only_what_it_listed),
		cmocka_unit_test(test_long_command_line_is_read_whole),
		cmocka_unit_test(test_walk_of_proc_holds_no_lock),
	};

	log_max_level = LOG_ERROR;
	return cmocka_run_group_tests(tests, setup, teardown);
}
