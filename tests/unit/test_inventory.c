// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A VM's drives and NICs as the inventory builds them: from the command
 * line, libvirt's live state (tests/fixtures/libvirt/) and the fds of a
 * snapshot (fdinfo from tests/fixtures/proc/), hot-plug and unplug, and
 * why what no probe takes is not measured.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "unit.h"

#include "core/discovery.h"
#include "core/inventory.h"
#include "core/libvirt.h"
#include "core/qemu.h"
#include "core/util.h"

#define FIXTURES "tests/fixtures"

static struct config cfg = { .proc_root = FIXTURES "/proc" };

/* A VM of pid 4242 from a command line given as arguments. */
static struct vm *vm_from(char *const argv[], int argc)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	assert_non_null(vm);
	vm->pid = 4242;
	assert_int_equal(0, qemu_parse_argv(argc, argv, &vm->spec));
	return vm;
}

static struct libvirt_domain *domain_fixture(void)
{
	struct libvirt_domain *dom = malloc(sizeof(*dom));
	char *buf = malloc(65536);
	long n;

	assert_non_null(dom);
	assert_non_null(buf);
	n = read_file(FIXTURES "/libvirt/web01.xml", buf, 65536);
	if (n <= 0)
		fail_msg("cannot read the libvirt fixture (%ld); run from the repository root", n);
	assert_int_equal(0, libvirt_parse(buf, (size_t)n, dom));
	free(buf);
	return dom;
}

static const struct vm_disk *disk_named(const struct vm *vm, const char *label)
{
	for (int i = 0; i < vm->nr_disks; i++)
		if (!strcmp(vm->disks[i].spec.label, label))
			return &vm->disks[i];
	fail_msg("no drive %s among %d", label, vm->nr_disks);
	return NULL;
}

static const struct vm_iface *iface_named(const struct vm *vm, const char *label)
{
	for (int i = 0; i < vm->nr_ifaces; i++)
		if (!strcmp(vm->ifaces[i].label, label))
			return &vm->ifaces[i];
	fail_msg("no interface %s among %d", label, vm->nr_ifaces);
	return NULL;
}

static void sync(struct discovery *d, struct vm *vm, const struct vm_snapshot *snap,
		 const struct libvirt_domain *dom)
{
	inventory_update(d, vm, snap, dom);
	inventory_settle(vm, true);
}

static void test_libvirt_status_gives_disks_nics_and_pid(void **state)
{
	struct libvirt_domain *dom = domain_fixture();
	static const struct { const char *label, *file, *backend, *remote, *aio; } want[] = {
		{ "virtio-disk0", "/var/lib/libvirt/images/web01.qcow2", "file", "", "native" },
		{ "virtio-disk1", "/var/lib/libvirt/images/hot & new.raw", "file", "", "threads" },
		{ "cinder", "rbd:volumes/volume-5d1f", "rbd", "volumes/volume-5d1f", "threads" },
		{ "virtio-disk3", "iscsi://10.0.0.5:3260/iqn.2003-01.org.example:t1/1", "iscsi",
		  "iqn.2003-01.org.example:t1/1", "threads" },
		{ "virtio-disk4", "/dev/mapper/vg-data", "host_device", "", "threads" },
	};

	expect_int("pid", 4242, dom->pid);
	expect_int("disks (the CD-ROM is none)", ARRAY_SIZE(want), dom->nr_disks);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		expect_str("label", want[i].label, dom->disks[i].label);
		expect_str("file", want[i].file, dom->disks[i].file);
		expect_str("backend", want[i].backend, dom->disks[i].backend);
		expect_str("remote", want[i].remote, dom->disks[i].remote);
		expect_str("aio", want[i].aio, dom->disks[i].aio);
	}
	expect_int("interfaces", 3, dom->nr_ifaces);
	expect_str("tap of net0", "vnet3", dom->ifaces[0].tap);
	expect_str("alias of the bridge NIC", "ua-extra", dom->ifaces[1].alias);
	expect_str("type of the bridge NIC", "tap", dom->ifaces[1].type);
	expect_str("vhost-user has no tap", "", dom->ifaces[2].tap);
	expect_str("vhost-user type", "vhost-user", dom->ifaces[2].type);
	free(dom);
}

static void test_malformed_libvirt_status_is_einval(void **state)
{
	struct libvirt_domain *dom = malloc(sizeof(*dom));
	static const char *const bad[] = { "", "<domstatus pid='1'>", "<notadomain/>", "\x01\x02" };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_int(bad[i], -EINVAL, libvirt_parse(bad[i], strlen(bad[i]), dom));
	free(dom);
}

/*
 * libvirt's state names what was hot-plugged: labels from the aliases
 * (KubeVirt's "ua-" dropped), AIO mode from the command line where it
 * has the drive; unplug drops it.
 */
static void test_hotplug_and_unplug_follow_libvirt_state(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=web01",
		"-drive", "file=/var/lib/libvirt/images/web01.qcow2,if=none,id=d0,aio=io_uring",
		"-device", "virtio-blk-pci,drive=d0,id=virtio-disk0",
		"-netdev", "tap,fd=33,id=hostnet0",
		"-device", "virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:6b:3c:58",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct libvirt_domain *dom = domain_fixture();
	struct vm_tun tuns[] = { { 33, "vnet3" }, { 40, "vnet9" } };
	struct vm_snapshot snap = { .fds_read = true, .tuns = tuns, .nr_tuns = 2 };
	struct discovery d = { .cfg = &cfg };

	sync(&d, vm, &snap, NULL);
	expect_int("drives from the command line", 1, vm->nr_disks);
	expect_int("NICs: the command line's and a tun fd nothing names", 2, vm->nr_ifaces);
	expect_str("a fd-passed tap is found by its fd", "vnet3", iface_named(vm, "vnet3")->tap);
	expect_int("the unnamed tun fd is learned from the fds", VM_SRC_FD,
		   iface_named(vm, "vnet9")->source);

	sync(&d, vm, &snap, dom);
	expect_int("drives from libvirt's state", 5, vm->nr_disks);
	expect_str("the AIO mode is QEMU's", "io_uring", disk_named(vm, "virtio-disk0")->spec.aio);
	expect_int("a hot-plugged drive comes from libvirt", VM_SRC_LIBVIRT,
		   disk_named(vm, "virtio-disk1")->source);
	expect_str("KubeVirt's ua- prefix is dropped", "rbd", disk_named(vm, "cinder")->spec.backend);
	expect_str("the NIC libvirt calls ua-extra is labelled extra", "vnet9",
		   iface_named(vm, "extra")->tap);
	expect_int("libvirt's vhost-user NIC is listed", 3, vm->nr_ifaces);
	expect_str("vhost-user is not measured, and says why",
		   "vhost-user: no tap on the host to hook", iface_named(vm, "net2")->cov.reason);

	dom->nr_disks = 1; /* virsh detach-disk of every other drive */
	sync(&d, vm, &snap, dom);
	expect_int("unplugged drives are dropped", 1, vm->nr_disks);
	free(dom);
	free(vm);
}

/*
 * On a VM no libvirt manages, a drive hot-plugged over QMP is known only
 * by its image: an open file with QEMU's image locks (fd 21), not a log
 * file (22) or a file with a POSIX lock (23, a pid file).
 */
static void test_locked_image_fd_is_a_drive_labelled_by_its_path(void **state)
{
	char *const argv[] = { "qemu-system-x86_64", "-name", "plain" };
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct vm_file files[] = {
		{ .fd = 21, .dev = 1, .ino = 100, .mode = S_IFREG, .path = "/images/hot.raw" },
		{ .fd = 22, .dev = 1, .ino = 101, .mode = S_IFREG, .path = "/var/log/qemu.log" },
		{ .fd = 23, .dev = 1, .ino = 102, .mode = S_IFREG, .path = "/run/qemu.pid" },
	};
	struct vm_snapshot snap = { .fds_read = true, .files = files, .nr_files = 3 };
	struct discovery d = { .cfg = &cfg };
	const struct vm_disk *disk;

	sync(&d, vm, &snap, NULL);
	expect_int("one drive: the locked image", 1, vm->nr_disks);
	disk = disk_named(vm, "/images/hot.raw");
	expect_int("learned from the fd", VM_SRC_FD, disk->source);
	expect_int("its identity is the fd's", 100, (long long)disk->ino);
	expect_str("its AIO mode is not known", "unknown", disk->spec.aio);
	expect_str("no probe here: the reason says so", "local image: the disk probe is off",
		   disk->cov.reason);

	/* A walk that could not be made keeps it; one that misses it drops it. */
	sync(&d, vm, &(struct vm_snapshot){ .fds_read = false }, NULL);
	expect_int("kept while the fds are not read", 1, vm->nr_disks);
	snap.nr_files = 0;
	sync(&d, vm, &snap, NULL);
	expect_int("its fd closed: hot-unplugged", 0, vm->nr_disks);
	free(vm);
}

static void test_unclaimed_network_storage_says_why(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "n",
		"-drive", "file=nbd://10.0.0.7:10809/export,if=none,id=n0",
		"-device", "virtio-blk-pci,drive=n0,id=vol-e",
		"-drive", "file=gluster://h/v/img,if=none,id=g0",
		"-device", "virtio-blk-pci,drive=g0,id=vol-g",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct discovery d = { .cfg = &cfg };

	sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	expect_int("both drives listed", 2, vm->nr_disks);
	expect_int("nbd not measured", 0, disk_named(vm, "vol-e")->cov.measured);
	expect_str("nbd's reason", "nbd: QEMU's built-in NBD client has no hook vmprobe can use",
		   disk_named(vm, "vol-e")->cov.reason);
	expect_str("gluster's reason", "gluster: no probe for this backend",
		   disk_named(vm, "vol-g")->cov.reason);
	free(vm);
}

static void test_interface_label_is_the_kubevirt_name_else_the_tap(void **state)
{
	static const struct { const char *device_id, *tap, *label; } cases[] = {
		{ "ua-default", "tap0", "default" },
		{ "net0", "vnet3", "vnet3" },
		{ "", "vnet4", "vnet4" },
		{ "vu0", "", "vu0" },
		{ "ua-", "tap1", "tap1" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[VM_ID_MAX];

		iface_label(cases[i].device_id, cases[i].tap, out, sizeof(out));
		expect_str(cases[i].device_id, cases[i].label, out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libvirt_status_gives_disks_nics_and_pid),
		cmocka_unit_test(test_malformed_libvirt_status_is_einval),
		cmocka_unit_test(test_hotplug_and_unplug_follow_libvirt_state),
		cmocka_unit_test(test_locked_image_fd_is_a_drive_labelled_by_its_path),
		cmocka_unit_test(test_unclaimed_network_storage_says_why),
		cmocka_unit_test(test_interface_label_is_the_kubevirt_name_else_the_tap),
	};

	log_max_level = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
