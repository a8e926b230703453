// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What vmprobe learns from a QEMU process: option splitting, whole command
 * lines (tests/fixtures/cmdline, one argument per line), tap names from
 * fdinfo (tests/fixtures/fdinfo) and the VM's name and namespace.
 * Run from the repository root, as tests/run.sh does.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "core/discovery.h"
#include "core/qemu.h"

#define FIXTURES "tests/fixtures"

/* A fixture file as the kernel shows /proc/PID/cmdline: each line one NUL-terminated argument. */
static char *load_cmdline(const char *name, size_t *len)
{
	char path[256];
	char *buf;
	long n;

	snprintf(path, sizeof(path), FIXTURES "/cmdline/%s", name);
	buf = malloc(64 * 1024);
	assert_non_null(buf);
	n = read_file(path, buf, 64 * 1024);
	if (n <= 0 || buf[n - 1] != '\n')
		fail_msg("%s: cannot read, empty or no final newline (%ld); run from the repository root",
			 path, n);
	for (long i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = '\0';
	*len = (size_t)n;
	return buf;
}

static char *load_text(const char *rel)
{
	char path[256];
	char *buf = malloc(4096);
	long n;

	assert_non_null(buf);
	snprintf(path, sizeof(path), FIXTURES "/%s", rel);
	n = read_file(path, buf, 4095);
	if (n < 0)
		fail_msg("%s: cannot read (%ld); run from the repository root", path, n);
	buf[n] = '\0';
	return buf;
}

struct want_nic {
	const char *type, *netdev_id, *device_id, *ifname, *mac;
	int fds[4];
	int nr_fds;
};

struct want_drive {
	const char *node, *label, *file, *aio, *backend, *remote;
};

struct want_vm {
	const char *name, *uuid;
	struct want_nic nics[4];
	int nr_nics;
	struct want_drive drives[8];
	int nr_drives;
};

static void expect_vm(const char *fixture, const struct want_vm *w, const struct vm_spec *vm)
{
	char ctx[128];

#define CTX(...) (snprintf(ctx, sizeof(ctx), __VA_ARGS__), ctx)
	expect_str(CTX("%s: name", fixture), w->name, vm->name);
	expect_str(CTX("%s: uuid", fixture), w->uuid, vm->uuid);
	expect_int(CTX("%s: number of NICs", fixture), w->nr_nics, vm->nr_nics);
	for (int i = 0; i < w->nr_nics; i++) {
		const struct want_nic *wn = &w->nics[i];
		const struct vm_nic *n = &vm->nics[i];

		expect_str(CTX("%s: nics[%d].type", fixture, i), wn->type, n->type);
		expect_str(CTX("%s: nics[%d].netdev_id", fixture, i), wn->netdev_id, n->netdev_id);
		expect_str(CTX("%s: nics[%d].device_id", fixture, i), wn->device_id, n->device_id);
		expect_str(CTX("%s: nics[%d].ifname", fixture, i), wn->ifname, n->ifname);
		expect_str(CTX("%s: nics[%d].mac", fixture, i), wn->mac, n->mac);
		expect_int(CTX("%s: nics[%d].nr_fds", fixture, i), wn->nr_fds, n->nr_fds);
		for (int f = 0; f < wn->nr_fds; f++)
			expect_int(CTX("%s: nics[%d].fds[%d]", fixture, i, f), wn->fds[f], n->fds[f]);
	}
	expect_int(CTX("%s: number of drives", fixture), w->nr_drives, vm->nr_drives);
	for (int i = 0; i < w->nr_drives; i++) {
		const struct want_drive *wd = &w->drives[i];
		const struct vm_drive *d = &vm->drives[i];

		expect_str(CTX("%s: drives[%d].node", fixture, i), wd->node, d->node);
		expect_str(CTX("%s: drives[%d].label", fixture, i), wd->label, d->label);
		expect_str(CTX("%s: drives[%d].file", fixture, i), wd->file, d->file);
		expect_str(CTX("%s: drives[%d].aio", fixture, i), wd->aio, d->aio);
		expect_str(CTX("%s: drives[%d].backend", fixture, i), wd->backend, d->backend);
		expect_str(CTX("%s: drives[%d].remote", fixture, i), wd->remote, d->remote);
	}
#undef CTX
}

static void expect_fixture(const char *fixture, const struct want_vm *w)
{
	struct vm_spec *vm = malloc(sizeof(*vm));
	size_t len;
	char *buf = load_cmdline(fixture, &len);
	int ret;

	assert_non_null(vm);
	ret = qemu_parse_cmdline(buf, len, vm);
	expect_int(fixture, 0, ret);
	expect_vm(fixture, w, vm);
	free(buf);
	free(vm);
}

static void test_libvirt_cmdline_gives_fd_taps_with_macs_and_blockdev_chains(void **state)
{
	static const struct want_vm w = {
		.name = "web01",
		.uuid = "8f2b6c1e-3d4a-4e5f-9a6b-7c8d9e0f1a2b",
		.nics = {
			{ "tap", "hostnet0", "net0", "", "52:54:00:6b:3c:58", { 33 }, 1 },
			{ "tap", "hostnet1", "net1", "", "52:54:00:1a:2b:3c", { 36, 37 }, 2 },
		},
		.nr_nics = 2,
		.drives = {
			{ "libvirt-2-format", "virtio-disk0", "/var/lib/libvirt/images/web01.qcow2",
			  "native", "file", "" },
			{ "libvirt-1-format", "virtio-disk1", "/var/lib/libvirt/images/web01-data.raw",
			  "threads", "file", "" },
		},
		.nr_drives = 2,
	};

	expect_fixture("libvirt.txt", &w);
}

static void test_kubevirt_cmdline_gives_multiqueue_fds_and_labels_without_ua_prefix(void **state)
{
	static const struct want_vm w = {
		/* Split into namespace and name later, by vm_identity(). */
		.name = "default_vmi-fedora",
		.uuid = "5a9fc181-957e-5c32-9e5a-2de5e9673531",
		.nics = {
			{ "tap", "hostua-default", "ua-default", "", "02:8e:3a:71:0b:2f", { 22, 23 }, 2 },
		},
		.nr_nics = 1,
		.drives = {
			{ "libvirt-2-format", "rootdisk", "/dev/rootdisk", "native", "host_device", "" },
			{ "libvirt-1-format", "cloudinitdisk",
			  "/var/run/kubevirt-ephemeral-disks/cloud-init-data/default/vmi-fedora/noCloud.iso",
			  "threads", "file", "" },
		},
		.nr_drives = 2,
	};

	expect_fixture("kubevirt.txt", &w);
}

static void test_handwritten_cmdline_gives_named_taps_drives_and_unescaped_name(void **state)
{
	static const struct want_vm w = {
		/* --name guest=a,,b: double dash, and ",," is a literal comma. */
		.name = "a,b",
		.uuid = "0e6f4b8a-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
		.nics = {
			{ "tap", "n0", "", "vnet3", "52:54:00:12:34:56", { 0 }, 0 },
			/* -nic: no netdev id, MAC from its own options. */
			{ "tap", "", "", "vnet4", "52:54:00:12:34:57", { 0 }, 0 },
			/* -netdev user has no tap: listed, to be reported as not measured. */
			{ "user", "n1", "", "", "", { 0 }, 0 },
		},
		.nr_nics = 3,
		.drives = {
			{ "d0", "disk0", "/img/a.raw", "io_uring", "file", "" },
			/* -device with no id: the label falls back to the node. */
			{ "d2", "d2", "/img/c.raw", "native", "file", "" },
			/* -drive if=virtio makes its own device. */
			{ "d1", "d1", "/img/b.qcow2", "threads", "file", "" },
		},
		.nr_drives = 3,
	};

	expect_fixture("handwritten.txt", &w);
}

static void test_network_storage_gives_backend_and_remote_name_and_vhost_user_nic(void **state)
{
	static const struct want_vm w = {
		.name = "storage",
		.uuid = "",
		.nics = {
			{ "vhost-user", "vu0", "ua-fast", "", "52:54:00:00:00:07", { 0 }, 0 },
		},
		.nr_nics = 1,
		.drives = {
			/* -drive rbd: string, snapshot and options cut from the image name. */
			{ "r0", "vol-a", "rbd:volumes/vol-a@snap1:conf=/etc/ceph/ceph.conf:id=nova",
			  "threads", "rbd", "volumes/vol-a" },
			/* libvirt's JSON -blockdev for rbd: no filename, pool and image keys. */
			{ "libvirt-3-format", "virtio-disk1", "rbd:volumes/tenant1/vol-b", "threads",
			  "rbd", "volumes/tenant1/vol-b" },
			{ "i0", "vol-c", "iscsi://10.0.0.5:3260/iqn.2003-01.org.example:t1/2", "threads",
			  "iscsi", "iqn.2003-01.org.example:t1/2" },
			{ "libvirt-4-format", "virtio-disk3",
			  "iscsi://10.0.0.6:3260/iqn.2003-01.org.example:t2/0", "threads", "iscsi",
			  "iqn.2003-01.org.example:t2/0" },
			{ "n0", "vol-e", "nbd://10.0.0.7:10809/export", "threads", "nbd", "" },
			/* A format over a protocol node: the backend is the leaf's. */
			{ "libvirt-5-format", "virtio-disk5", "", "threads", "nbd", "" },
			/* A -blockdev format node with its protocol node inline (file.driver=). */
			{ "inl-r", "vol-f", "rbd:volumes/vol-f", "threads", "rbd",
			  "volumes/vol-f" },
			{ "inl-i", "vol-g", "iscsi://10.0.0.9:3260/iqn.2003-01.org.example:t3/1",
			  "threads", "iscsi", "iqn.2003-01.org.example:t3/1" },
		},
		.nr_drives = 8,
	};

	expect_fixture("network-storage.txt", &w);
}

static void test_malformed_json_option_is_skipped_and_the_rest_parsed(void **state)
{
	static const struct want_vm w = {
		.name = "broken",
		.uuid = "c3d4e5f6-a7b8-4c9d-8e0f-112233445566",
		.nics = {
			{ "tap", "hostnet1", "net1", "", "52:54:00:00:00:02", { 40 }, 1 },
		},
		.nr_nics = 1,
		.drives = {
			{ "libvirt-1-format", "virtio-disk0", "/var/lib/libvirt/images/broken.qcow2",
			  "threads", "file", "" },
		},
		.nr_drives = 1,
	};

	expect_fixture("malformed-json.txt", &w);
}

static void test_non_qemu_cmdline_is_enoent(void **state)
{
	struct vm_spec *vm = malloc(sizeof(*vm));
	size_t len;
	char *buf = load_cmdline("not-qemu.txt", &len);

	assert_non_null(vm);
	assert_int_equal(-ENOENT, qemu_parse_cmdline(buf, len, vm));
	free(buf);
	free(vm);
}

static void test_cmdline_without_final_nul_is_einval(void **state)
{
	static const char unterminated[] = "qemu-system-x86_64\0-name\0vm1";
	struct vm_spec *vm = malloc(sizeof(*vm));

	assert_non_null(vm);
	assert_int_equal(-EINVAL, qemu_parse_cmdline(unterminated, sizeof(unterminated) - 1, vm));
	assert_int_equal(-EINVAL, qemu_parse_cmdline("", 0, vm));
	free(vm);
}

static void test_emulator_is_recognised_by_argv0_basename(void **state)
{
	static const struct {
		const char *argv0;
		bool is;
	} cases[] = {
		{ "/usr/bin/qemu-system-x86_64", true },
		{ "qemu-system-aarch64", true },
		{ "/usr/libexec/qemu-kvm", true },
		{ "qemu-kvm", true },
		{ "/usr/bin/qemu-img", false },
		{ "/usr/bin/qemu-kvm-wrapper", false },
		{ "/opt/qemu-system-x86_64/bin/python3", false },
		{ "/usr/bin/python3", false },
		{ "", false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_int(cases[i].argv0, cases[i].is, qemu_is_emulator(cases[i].argv0));
}

static void test_name_without_guest_key_and_trailing_option_without_value(void **state)
{
	char *const argv[] = { "qemu-system-x86_64", "-name", "vm1", "-uuid" };
	struct vm_spec *vm = malloc(sizeof(*vm));

	assert_non_null(vm);
	assert_int_equal(0, qemu_parse_argv(ARRAY_SIZE(argv), argv, vm));
	assert_string_equal("vm1", vm->name);
	assert_string_equal("", vm->uuid);
	assert_int_equal(0, vm->nr_nics);
	assert_int_equal(0, vm->nr_drives);
	free(vm);
}

static void test_mac_from_a_device_given_before_its_netdev(void **state)
{
	char *const argv[] = { "qemu-system-x86_64", "-device",
			       "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:09", "-netdev",
			       "tap,id=n0,ifname=tap9" };
	struct vm_spec *vm = malloc(sizeof(*vm));

	assert_non_null(vm);
	assert_int_equal(0, qemu_parse_argv(ARRAY_SIZE(argv), argv, vm));
	assert_int_equal(1, vm->nr_nics);
	assert_string_equal("52:54:00:00:00:09", vm->nics[0].mac);
	free(vm);
}

/* Found by tests/fuzz/fuzz_cmdline: a NIC of type "" was listed. */
static void test_netdev_of_an_empty_type_is_no_nic(void **state)
{
	char *const argv[] = { "qemu-system-x86_64", "-netdev", "{\"type\":\"\",\"id\":\"n0\"}",
			       "-netdev", "type=,id=n1", "-netdev", "tap,id=n2,ifname=tap2" };
	struct vm_spec *vm = malloc(sizeof(*vm));

	assert_non_null(vm);
	assert_int_equal(0, qemu_parse_argv(ARRAY_SIZE(argv), argv, vm));
	expect_int("only the tap", 1, vm->nr_nics);
	expect_str("its id", "n2", vm->nics[0].netdev_id);
	free(vm);
}

static void test_drives_without_id_get_qemu_names_and_firmware_cdrom_are_not_disks(void **state)
{
	char *const argv[] = { "qemu-system-x86_64",
			       "-drive", "if=pflash,format=raw,file=/usr/share/OVMF/OVMF_CODE.fd,id=fw",
			       "-drive", "file=/img/cd.iso,media=cdrom,id=cd0",
			       "-drive", "file=/img/a.qcow2,if=virtio",
			       "-drive", "file=/img/b.raw,if=virtio,aio=native" };
	struct vm_spec *vm = malloc(sizeof(*vm));

	assert_non_null(vm);
	assert_int_equal(0, qemu_parse_argv(ARRAY_SIZE(argv), argv, vm));
	assert_int_equal(2, vm->nr_drives);
	assert_string_equal("virtio0", vm->drives[0].label);
	assert_string_equal("/img/a.qcow2", vm->drives[0].file);
	assert_string_equal("virtio1", vm->drives[1].label);
	assert_string_equal("native", vm->drives[1].aio);
	free(vm);
}

/*
 * A CD-ROM drive made of -blockdev or -drive if=none and an ide-cd or
 * scsi-cd device (libvirt's way) is no disk either: its medium is one of
 * the files QEMU holds that are no drive.
 */
static void test_cd_devices_are_not_disks(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64",
		"-blockdev", "{\"driver\":\"file\",\"filename\":\"/iso/install.iso\",\"node-name\":\"cd0\"}",
		"-device", "ide-cd,drive=cd0,id=sata0-0-0",
		"-drive", "file=/iso/tools.iso,if=none,id=cd1,format=raw",
		"-device", "{\"driver\":\"scsi-cd\",\"drive\":\"cd1\",\"id\":\"scsi0-0-0-1\"}",
		"-drive", "file=/img/a.raw,if=none,id=d0,format=raw",
		"-device", "virtio-blk-pci,drive=d0,id=virtio-disk0",
	};
	struct vm_spec *vm = malloc(sizeof(*vm));
	bool iso = false, tools = false;

	assert_non_null(vm);
	assert_int_equal(0, qemu_parse_argv(ARRAY_SIZE(argv), argv, vm));
	expect_int("one disk: the virtio one", 1, vm->nr_drives);
	expect_str("its label", "virtio-disk0", vm->drives[0].label);
	for (int i = 0; i < vm->others.n; i++) {
		iso |= !strcmp(vm->others.path[i], "/iso/install.iso");
		tools |= !strcmp(vm->others.path[i], "/iso/tools.iso");
	}
	expect_int("the ide-cd medium is a file that is no drive", 1, iso);
	expect_int("and so is the scsi-cd one", 1, tools);
	free(vm);
}

static void test_qopts_split_keys_values_implied_key_and_json(void **state)
{
	static const struct {
		const char *in, *implied;
		const char *items[8]; /* "key=value", in order */
	} cases[] = {
		{ "tap,id=n0,ifname=vnet3", "type", { "type=tap", "id=n0", "ifname=vnet3" } },
		{ "web01", "guest", { "guest=web01" } },
		{ "guest=a,,b,debug-threads=on", "guest", { "guest=a,b", "debug-threads=on" } },
		{ "a,,b", "guest", { "guest=a,b" } },
		{ "x=1,,,y=2", NULL, { "x=1,", "y=2" } },
		{ "k=a=b", NULL, { "k=a=b" } },
		{ "virtio-blk-pci,drive=d0,share-rw", "driver",
		  { "driver=virtio-blk-pci", "drive=d0", "share-rw=on" } },
		{ "readonly,file=/a", NULL, { "readonly=on", "file=/a" } },
		{ "a=1,,", NULL, { "a=1," } },
		{ "", "guest", { NULL } },
		{ "{\"driver\":\"qcow2\",\"node-name\":\"f\","
		  "\"file\":{\"driver\":\"file\",\"filename\":\"/a.qcow2\",\"aio\":\"native\"},"
		  "\"read-only\":true,\"cache\":{\"direct\":true,\"no-flush\":false}}",
		  "driver",
		  { "driver=qcow2", "node-name=f", "file.driver=file", "file.filename=/a.qcow2",
		    "file.aio=native", "read-only=true", "cache.direct=true",
		    "cache.no-flush=false" } },
		{ "{\"port\":16,\"romfile\":\"\",\"x\":null}", "driver",
		  { "port=16", "romfile=", "x=" } },
		{ "{}", "driver", { NULL } },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct qopts o;
		char ctx[160], got[512];
		size_t n = 0;
		int ret = qopts_parse(cases[i].in, cases[i].implied, &o);

		expect_int(cases[i].in, 0, ret);
		while (n < ARRAY_SIZE(cases[i].items) && cases[i].items[n])
			n++;
		expect_int(cases[i].in, n, o.n);
		for (size_t k = 0; k < n; k++) {
			snprintf(ctx, sizeof(ctx), "%s: item %zu", cases[i].in, k);
			snprintf(got, sizeof(got), "%s=%s", o.items[k].key, o.items[k].val);
			expect_str(ctx, cases[i].items[k], got);
		}
		qopts_free(&o);
	}
}

static void test_qopts_reject_malformed_json(void **state)
{
	static const char *const cases[] = {
		"{",
		"{\"type\":\"tap\",\"fd\":\"33\"",
		"{\"type\":tap}",
		"{type=tap,id=n0}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct qopts o;

		expect_int(cases[i], -EINVAL, qopts_parse(cases[i], "type", &o));
		expect_int(cases[i], 0, o.n);
	}
}

static void test_qopts_get_returns_the_last_occurrence(void **state)
{
	struct qopts o;

	assert_int_equal(0, qopts_parse("tap,ifname=a,ifname=b", "type", &o));
	assert_string_equal("b", qopts_get(&o, "ifname"));
	assert_string_equal("tap", qopts_get(&o, "type"));
	assert_null(qopts_get(&o, "fd"));
	qopts_free(&o);
}

static void test_fdinfo_of_a_tap_names_it(void **state)
{
	char *text = load_text("fdinfo/tap");
	char ifname[IFNAMSIZ] = "";

	assert_int_equal(0, fdinfo_tap_name(text, ifname, sizeof(ifname)));
	assert_string_equal("vnet3", ifname);
	free(text);
}

static void test_fdinfo_of_a_regular_file_is_enoent(void **state)
{
	char *text = load_text("fdinfo/regular-file");
	char ifname[IFNAMSIZ] = "untouched";

	assert_int_equal(-ENOENT, fdinfo_tap_name(text, ifname, sizeof(ifname)));
	assert_string_equal("untouched", ifname);
	free(text);
}

static void test_fdinfo_qemu_image_locks_tell_an_image(void **state)
{
	static const struct { const char *text; bool image; } cases[] = {
		{ "pos:\t0\nflags:\t02140002\nlock:\t1: OFDLCK ADVISORY  READ -1 fe:00:10952849 100 101\n",
		  true },
		{ "lock:\t1: OFDLCK ADVISORY  WRITE -1 08:01:77 201 201\n", true },
		/* A pid file: a POSIX lock from offset 0. */
		{ "lock:\t1: POSIX  ADVISORY  WRITE 4242 fe:00:778 0 EOF\n", false },
		/* An OFD lock of someone else's range. */
		{ "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:1 0 99\n", false },
		{ "pos:\t0\nflags:\t0100001\n", false },
		{ "lock:", false },
		{ "", false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_int(cases[i].text, cases[i].image, fdinfo_qemu_image_lock(cases[i].text));
}

static void test_fdinfo_edge_cases(void **state)
{
	static const struct {
		const char *what, *text;
		size_t size;
		int ret;
		const char *ifname;
	} cases[] = {
		{ "iff on the last line without newline", "pos:\t0\niff:\ttap0", IFNAMSIZ, 0, "tap0" },
		{ "iff on the first line", "iff:\tvnet0\nflags:\t02\n", IFNAMSIZ, 0, "vnet0" },
		{ "iff: only inside another key", "xiff:\tvnet9\n", IFNAMSIZ, -ENOENT, NULL },
		{ "empty iff", "pos:\t0\niff:\t\n", IFNAMSIZ, -ENOENT, NULL },
		{ "name does not fit", "iff:\tvnet3\n", 5, -ENOENT, NULL },
		{ "name just fits", "iff:\tvnet3\n", 6, 0, "vnet3" },
		{ "empty text", "", IFNAMSIZ, -ENOENT, NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char ifname[IFNAMSIZ] = "";
		int ret = fdinfo_tap_name(cases[i].text, ifname, cases[i].size);

		expect_int(cases[i].what, cases[i].ret, ret);
		if (ret == 0)
			expect_str(cases[i].what, cases[i].ifname, ifname);
	}
}

#define CG_KUBEVIRT                                                                           \
	"0::/kubepods.slice/kubepods-burstable.slice/"                                        \
	"kubepods-burstable-pod3f9a6c2e_1b2d_4c5e_8f7a_9b0c1d2e3f4a.slice/"                   \
	"cri-containerd-4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f.scope\n"
#define CG_V1_KUBEPODS                                                                        \
	"12:pids:/kubepods/burstable/pod3f9a6c2e-1b2d-4c5e-8f7a-9b0c1d2e3f4a/4e5f6a7b8c9d\n" \
	"1:name=systemd:/kubepods/burstable/pod3f9a6c2e-1b2d-4c5e-8f7a-9b0c1d2e3f4a/4e5f6a7b8c9d\n"
/* Read from vmprobe's own pod, in a cgroup namespace of its own (cgroup v2, cgroupfs driver). */
#define CG_V2_POD_NS "0::/../../pod3f9a6c2e-1b2d-4c5e-8f7a-9b0c1d2e3f4a/4e5f6a7b8c9d\n"
#define CG_V2_POD_NS_QOS "0::/../../../pod3f9a6c2e-1b2d-4c5e-8f7a-9b0c1d2e3f4a/4e5f6a7b8c9d\n"
#define CG_NOT_A_POD "0::/system.slice/pod-manager.service\n"
#define CG_LIBVIRT "0::/machine.slice/machine-qemu\\x2d3\\x2dns1_vm\\x2da.scope/libvirt/emulator\n"

static void test_vm_identity_splits_namespace_only_inside_kubepods(void **state)
{
	static const struct {
		const char *what, *qemu_name, *cgroup, *uuid;
		int pid;
		const char *name, *ns;
	} cases[] = {
		{ "KubeVirt pod (cgroup v2)", "ns1_vm-a", CG_KUBEVIRT, "u", 1, "vm-a", "ns1" },
		{ "KubeVirt pod (cgroup v1)", "default_vmi-fedora", CG_V1_KUBEPODS, "u", 1,
		  "vmi-fedora", "default" },
		{ "KubeVirt pod seen from a cgroup namespace", "ns1_vm-a", CG_V2_POD_NS, "u", 1,
		  "vm-a", "ns1" },
		{ "... in another QoS class", "ns1_vm-a", CG_V2_POD_NS_QOS, "u", 1, "vm-a", "ns1" },
		{ "a unit named pod-...: no split", "ns1_vm-a", CG_NOT_A_POD, "u", 1, "ns1_vm-a",
		  "" },
		{ "split at the first underscore", "ns1_vm_b", CG_KUBEVIRT, "u", 1, "vm_b", "ns1" },
		{ "libvirt host: no split", "ns1_vm-a", CG_LIBVIRT, "u", 1, "ns1_vm-a", "" },
		{ "unreadable cgroup: no split", "ns1_vm-a", NULL, "u", 1, "ns1_vm-a", "" },
		{ "pod, name without underscore", "vm-a", CG_KUBEVIRT, "u", 1, "vm-a", "" },
		{ "pod, leading underscore", "_vm-a", CG_KUBEVIRT, "u", 1, "_vm-a", "" },
		{ "pod, trailing underscore", "ns1_", CG_KUBEVIRT, "u", 1, "ns1_", "" },
		{ "no name: the uuid", "", CG_LIBVIRT, "8f2b6c1e-3d4a-4e5f-9a6b-7c8d9e0f1a2b", 4242,
		  "8f2b6c1e-3d4a-4e5f-9a6b-7c8d9e0f1a2b", "" },
		{ "NULL name: the uuid", NULL, CG_KUBEVIRT, "u-1", 4242, "u-1", "" },
		{ "no name, no uuid: qemu-PID", "", CG_LIBVIRT, "", 4242, "qemu-4242", "" },
		{ "no name, NULL uuid: qemu-PID", NULL, NULL, NULL, 7, "qemu-7", "" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[VM_NAME_MAX] = "stale", ns[VM_NAME_MAX] = "stale";
		char ctx[128];

		vm_identity(cases[i].qemu_name, cases[i].cgroup, cases[i].pid, cases[i].uuid, name,
			    sizeof(name), ns, sizeof(ns));
		snprintf(ctx, sizeof(ctx), "%s: name", cases[i].what);
		expect_str(ctx, cases[i].name, name);
		snprintf(ctx, sizeof(ctx), "%s: namespace", cases[i].what);
		expect_str(ctx, cases[i].ns, ns);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libvirt_cmdline_gives_fd_taps_with_macs_and_blockdev_chains),
		cmocka_unit_test(test_kubevirt_cmdline_gives_multiqueue_fds_and_labels_without_ua_prefix),
		cmocka_unit_test(test_handwritten_cmdline_gives_named_taps_drives_and_unescaped_name),
		cmocka_unit_test(test_network_storage_gives_backend_and_remote_name_and_vhost_user_nic),
		cmocka_unit_test(test_malformed_json_option_is_skipped_and_the_rest_parsed),
		cmocka_unit_test(test_non_qemu_cmdline_is_enoent),
		cmocka_unit_test(test_cmdline_without_final_nul_is_einval),
		cmocka_unit_test(test_emulator_is_recognised_by_argv0_basename),
		cmocka_unit_test(test_name_without_guest_key_and_trailing_option_without_value),
		cmocka_unit_test(test_mac_from_a_device_given_before_its_netdev),
		cmocka_unit_test(test_netdev_of_an_empty_type_is_no_nic),
		cmocka_unit_test(test_drives_without_id_get_qemu_names_and_firmware_cdrom_are_not_disks),
		cmocka_unit_test(test_cd_devices_are_not_disks),
		cmocka_unit_test(test_qopts_split_keys_values_implied_key_and_json),
		cmocka_unit_test(test_qopts_reject_malformed_json),
		cmocka_unit_test(test_qopts_get_returns_the_last_occurrence),
		cmocka_unit_test(test_fdinfo_of_a_tap_names_it),
		cmocka_unit_test(test_fdinfo_of_a_regular_file_is_enoent),
		cmocka_unit_test(test_fdinfo_edge_cases),
		cmocka_unit_test(test_fdinfo_qemu_image_locks_tell_an_image),
		cmocka_unit_test(test_vm_identity_splits_namespace_only_inside_kubepods),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
