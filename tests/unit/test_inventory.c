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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
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

/* libvirt's state of a domain, from its XML. */
static struct libvirt_domain *domain_parse(const char *xml)
{
	struct libvirt_domain *dom = malloc(sizeof(*dom));

	assert_non_null(dom);
	assert_int_equal(0, libvirt_parse(xml, strlen(xml), dom));
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

/* Whether the VM has a drive labelled `label`, present. */
static int has_disk(const struct vm *vm, const char *label)
{
	for (int i = 0; i < vm->nr_disks; i++)
		if (vm->disks[i].present && !strcmp(vm->disks[i].spec.label, label))
			return 1;
	return 0;
}

static const struct vm_iface *iface_named(const struct vm *vm, const char *label)
{
	for (int i = 0; i < vm->nr_ifaces; i++)
		if (!strcmp(vm->ifaces[i].label, label))
			return &vm->ifaces[i];
	fail_msg("no interface %s among %d", label, vm->nr_ifaces);
	return NULL;
}

static void inv_sync(struct discovery *d, struct vm *vm, const struct vm_snapshot *snap,
		 const struct libvirt_domain *dom)
{
	inventory_update(d, vm, snap, dom);
	static const struct probe_set measuring = { .nr = 1 };

	inventory_settle(vm, &measuring);
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
	expect_str("the image format", "qcow2", dom->disks[0].format);
	/* QEMU locks these too: the fd scan must not take them for drives. */
	expect_int("other files: backing image, CD-ROM medium, firmware, its variables", 4,
		   dom->others.n);
	expect_str("the firmware", "/usr/share/OVMF/OVMF_CODE_4M.fd", dom->others.path[0]);
	expect_str("its variables", "/var/lib/libvirt/qemu/nvram/web01_VARS.fd",
		   dom->others.path[1]);
	expect_str("the backing image", "/var/lib/nova/instances/_base/4c1e5a", dom->others.path[2]);
	expect_str("the CD-ROM's medium", "/var/lib/libvirt/images/install.iso", dom->others.path[3]);
	free(dom);
}

/*
 * The status file is read again when it is replaced (a new inode, even
 * with the same mtime), not at every scan when it is not this VM's; its
 * pid may be the one QEMU has in its own pid namespace (a KubeVirt pod).
 */
static void test_libvirt_status_file_by_pid_or_pod_pid(void **state)
{
	char root[] = "/tmp/vmprobe-unit-lv.XXXXXX", dir[256], file[300], tmp[320], cmd[700];
	struct libvirt_state *st = calloc(1, sizeof(*st));
	struct timespec times[2];
	struct stat sb;

	assert_non_null(st);
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/run/libvirt/qemu", root);
	snprintf(file, sizeof(file), "%s/web01.xml", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp " FIXTURES "/libvirt/web01.xml '%s'", dir,
		 file);
	assert_int_equal(0, system(cmd));
	expect_int("host pid 777, pod pid 4242: this VM's", 1,
		   libvirt_refresh(st, root, "web01", "", 777, 4242, false));
	expect_int("valid", 1, st->valid);
	expect_int("unchanged: not read again", 0,
		   libvirt_refresh(st, root, "web01", "", 777, 4242, false));
	/* libvirt writes a new file and renames it over the old one, within one mtime tick. */
	assert_int_equal(0, stat(file, &sb));
	snprintf(tmp, sizeof(tmp), "%s.new", file);
	snprintf(cmd, sizeof(cmd), "sed 's/vnet9/vnet8/' '%s' > '%s'", file, tmp);
	assert_int_equal(0, system(cmd));
	times[0] = sb.st_atim;
	times[1] = sb.st_mtim;
	assert_int_equal(0, utimensat(AT_FDCWD, tmp, times, 0));
	assert_int_equal(0, rename(tmp, file));
	expect_int("replaced with the same mtime: read again", 1,
		   libvirt_refresh(st, root, "web01", "", 777, 4242, false));
	expect_str("what it says now", "vnet8", st->dom.ifaces[1].tap);

	memset(st, 0, sizeof(*st));
	expect_int("another domain's pid: not this VM's", 0,
		   libvirt_refresh(st, root, "web01", "", 777, 0, false));
	expect_int("and not valid", 0, st->valid);
	expect_int("read once only, until it changes", 1, st->read);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(0, system(cmd));
	free(st);
}

static void test_malformed_libvirt_status_is_einval(void **state)
{
	struct libvirt_domain *dom = malloc(sizeof(*dom));
	static const char *const bad[] = { "", "<domstatus pid='1'>", "<notadomain/>", "\x01\x02" };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_int(bad[i], -EINVAL, libvirt_parse(bad[i], strlen(bad[i]), dom));
	free(dom);
}

/* Found by tests/fuzz/fuzz_libvirt: a drive with no backend was listed with backend="". */
static void test_network_disk_without_protocol_has_backend_unknown(void **state)
{
	static const char xml[] = "<domstatus pid='7'><domain><devices><disk type='network'>"
				  "<source name='volumes/v1'/><target dev='vdb'/></disk>"
				  "</devices></domain></domstatus>";
	struct libvirt_domain *dom = domain_parse(xml);

	expect_int("one disk", 1, dom->nr_disks);
	expect_str("its backend", "unknown", dom->disks[0].backend);
	expect_str("its label", "vdb", dom->disks[0].label);
	free(dom);
}

/* libvirt's iSCSI name may leave the LUN out: it is LUN 0, which the session's requests name. */
static void test_iscsi_name_without_lun_is_lun_0(void **state)
{
	static const char xml[] = "<domstatus pid='7'><domain><devices><disk type='network'>"
				  "<source protocol='iscsi' name='iqn.2003-01.org.example:t9'>"
				  "<host name='10.0.0.5' port='3260'/></source><target dev='vdb'/>"
				  "</disk><disk type='network'><source protocol='iscsi' "
				  "name='iqn.2003-01.org.example:t9/3'><host name='10.0.0.5'/>"
				  "</source><target dev='vdc'/></disk></devices></domain>"
				  "</domstatus>";
	struct libvirt_domain *dom = domain_parse(xml);

	expect_int("two disks", 2, dom->nr_disks);
	expect_str("no LUN: 0", "iqn.2003-01.org.example:t9/0", dom->disks[0].remote);
	expect_str("a LUN: kept", "iqn.2003-01.org.example:t9/3", dom->disks[1].remote);
	free(dom);
}

/*
 * libvirt names a storage-pool volume (<disk type='volume'>) by pool and
 * volume only: the drive is the image QEMU was given for it, labelled as
 * libvirt has it, not an unmeasured "volume" beside a drive of its path.
 */
static void test_libvirt_volume_disk_is_the_image_qemu_opened(void **state)
{
	static const char xml[] =
		"<domstatus pid='4242'><domain><devices><disk type='volume' device='disk'>"
		"<driver name='qemu' type='qcow2'/><source pool='default' volume='vol.qcow2'/>"
		"<target dev='vda'/><alias name='virtio-disk0'/></disk></devices></domain>"
		"</domstatus>";
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=pooled", "-blockdev",
		"{\"driver\":\"file\",\"filename\":\"/var/lib/libvirt/images/vol.qcow2\","
		"\"node-name\":\"libvirt-1-storage\",\"aio\":\"native\"}",
		"-blockdev",
		"{\"node-name\":\"libvirt-1-format\",\"driver\":\"qcow2\","
		"\"file\":\"libvirt-1-storage\"}",
		"-device", "virtio-blk-pci,drive=libvirt-1-format,id=virtio-disk0",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct libvirt_domain *dom = domain_parse(xml);
	struct discovery d = { .cfg = &cfg };
	const struct vm_disk *disk;

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = false }, dom);
	expect_int("one drive", 1, vm->nr_disks);
	disk = disk_named(vm, "virtio-disk0");
	expect_str("its image, from the command line", "/var/lib/libvirt/images/vol.qcow2",
		   disk->spec.file);
	expect_str("a local image", "file", disk->spec.backend);
	expect_str("QEMU's AIO mode", "native", disk->spec.aio);
	expect_int("known from libvirt", VM_SRC_LIBVIRT, disk->source);
	free(dom);
	free(vm);
}

/* A NIC with no tap (vhost-user) that libvirt and the command line both name is one NIC. */
static void test_tapless_nic_from_cmdline_and_libvirt_is_listed_once(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "web01",
		"-chardev", "socket,id=charnet2,path=/run/vhost.sock",
		"-netdev", "vhost-user,chardev=charnet2,id=hostnet2",
		"-device", "virtio-net-pci,netdev=hostnet2,id=net2,mac=52:54:00:00:00:07",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct libvirt_domain *dom = domain_fixture();
	struct discovery d = { .cfg = &cfg };
	int named = 0;

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, dom);
	for (int i = 0; i < vm->nr_ifaces; i++)
		named += !strcmp(vm->ifaces[i].label, "net2");
	expect_int("net2 is listed once", 1, named);
	expect_int("with libvirt's two taps, three NICs", 3, vm->nr_ifaces);
	free(dom);
	free(vm);
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

	inv_sync(&d, vm, &snap, NULL);
	expect_int("drives from the command line", 1, vm->nr_disks);
	expect_int("NICs: the command line's and a tun fd nothing names", 2, vm->nr_ifaces);
	expect_str("a fd-passed tap is found by its fd", "vnet3", iface_named(vm, "vnet3")->tap);
	expect_int("the unnamed tun fd is learned from the fds", VM_SRC_FD,
		   iface_named(vm, "vnet9")->source);

	inv_sync(&d, vm, &snap, dom);
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
	inv_sync(&d, vm, &snap, dom);
	expect_int("unplugged drives are dropped", 1, vm->nr_disks);
	free(dom);
	free(vm);
}

/*
 * On a VM no libvirt manages, a drive hot-plugged over QMP is known only
 * by its image: an open file with QEMU's image locks (fd 21, 24), not a log
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

	inv_sync(&d, vm, &snap, NULL);
	expect_int("one drive: the locked image", 1, vm->nr_disks);
	disk = disk_named(vm, "/images/hot.raw");
	expect_int("learned from the fd", VM_SRC_FD, disk->source);
	expect_int("its identity is the fd's", 100, (long long)disk->ino);
	expect_str("its AIO mode is not known", "unknown", disk->spec.aio);
	expect_str("no probe here: the reason says so", "local image: the disk probe is off",
		   disk->cov.reason);

	/*
	 * Deleted (or renamed) while QEMU holds it: the same image, its label
	 * kept. A new image where it was is another drive, told apart.
	 */
	snprintf(files[0].path, sizeof(files[0].path), "/images/hot.raw (deleted)");
	inv_sync(&d, vm, &snap, NULL);
	expect_int("deleted: still one drive", 1, vm->nr_disks);
	expect_int("the same image", 100, (long long)disk_named(vm, "/images/hot.raw")->ino);
	files[1] = (struct vm_file){ .fd = 24, .dev = 1, .ino = 103, .mode = S_IFREG,
				     .path = "/images/hot.raw" };
	inv_sync(&d, vm, &snap, NULL);
	expect_int("a new image at its path: two drives", 2, vm->nr_disks);
	expect_int("the first keeps its label", 100,
		   (long long)disk_named(vm, "/images/hot.raw")->ino);
	expect_int("the new one is told apart", 103,
		   (long long)disk_named(vm, "/images/hot.raw (inode 103)")->ino);
	snap.nr_files = 1;
	inv_sync(&d, vm, &snap, NULL);
	expect_int("the new one unplugged", 1, vm->nr_disks);

	/* A walk that could not be made keeps it; one that misses it drops it. */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = false }, NULL);
	expect_int("kept while the fds are not read", 1, vm->nr_disks);
	snap.nr_files = 0;
	inv_sync(&d, vm, &snap, NULL);
	expect_int("its fd closed: hot-unplugged", 0, vm->nr_disks);

	/* Unplugged and deleted, its inode number given to a new image plugged: another drive. */
	files[0] = (struct vm_file){ .fd = 21, .dev = 1, .ino = 100, .btime_ns = 1000,
				     .mode = S_IFREG, .path = "/images/a.raw" };
	snap.nr_files = 1;
	inv_sync(&d, vm, &snap, NULL);
	snprintf(files[0].path, sizeof(files[0].path), "/images/b.raw");
	files[0].btime_ns = 2000;
	inv_sync(&d, vm, &snap, NULL);
	expect_int("one drive", 1, vm->nr_disks);
	expect_int("the new image, by its birth", 2000,
		   (long long)disk_named(vm, "/images/b.raw")->btime_ns);
	free(vm);
}

/*
 * A fake /proc under `root` (a mkdtemp template, made here) for pid 4242,
 * whose root is `vm_root` (NULL: this one; relative: to root/4242); `c`
 * reads it. With img/ made.
 */
static void fake_proc(char *root, const char *vm_root, struct config *c)
{
	char cmd[700];

	assert_non_null(mkdtemp(root));
	snprintf(c->proc_root, sizeof(c->proc_root), "%s", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/img %s/4242/fd %s/4242/fdinfo", root, root, root);
	assert_int_equal(0, system(cmd));
	snprintf(cmd, sizeof(cmd), "%s/4242/root", root);
	assert_int_equal(0, symlink(vm_root ? vm_root : "/", cmd));
}

static void rm_rf(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(0, system(cmd));
}

/* A qcow2 header naming `backing` (at byte 256). */
static void write_qcow2(const char *path, const char *backing)
{
	unsigned char h[512] = { 0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3 };
	size_t len = strlen(backing);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	h[14] = 1; /* backing_file_offset = 256, big-endian */
	h[19] = (unsigned char)len;
	memcpy(h + 256, backing, len);
	assert_int_equal(1, fwrite(h, sizeof(h), 1, f));
	fclose(f);
}

/* fd N of the fake process: the file, and fdinfo with QEMU's image locks. */
static void fake_fd(const char *root, const char *file, int fd, struct vm_file *out)
{
	char path[512], cmd[1100];
	struct stat st;

	snprintf(path, sizeof(path), "%s/4242/fd/%d", root, fd);
	assert_int_equal(0, symlink(file, path));
	snprintf(cmd, sizeof(cmd), "cp " FIXTURES "/proc/4242/fdinfo/21 '%s/4242/fdinfo/%d'", root, fd);
	assert_int_equal(0, system(cmd));
	assert_int_equal(0, stat(file, &st));
	*out = (struct vm_file){ .fd = fd, .dev = st.st_dev, .ino = st.st_ino, .mode = st.st_mode };
	snprintf(out->path, sizeof(out->path), "%s", file);
}

/*
 * A drive named by a path relative to where QEMU started (it left for /
 * with -daemonize) is not found by its name: it is the one image QEMU
 * holds of that file name, one drive under its id, not two. Two images of
 * that name: which one is not guessed.
 */
static void test_unresolvable_named_drive_is_its_open_image(void **state)
{
	char root[] = "/tmp/vmprobe-unit-rel.XXXXXX", one[128], other[128], cmd[300];
	char *const argv[] = { "qemu-system-x86_64", "-name", "rel", "-drive",
			       "file=disk.raw,format=raw,if=none,id=d0", "-device",
			       "virtio-blk-pci,drive=d0,id=vol-a" };
	struct vm_file files[2];
	struct config c = { 0 };
	struct discovery d = { .cfg = &c };
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct vm_snapshot snap = { .fds_read = true, .files = files, .nr_files = 1 };

	fake_proc(root, NULL, &c);
	snprintf(one, sizeof(one), "%s/img/disk.raw", root);
	snprintf(cmd, sizeof(cmd), "mkdir %s/img/b && touch %s %s/img/b/disk.raw", root, one, root);
	assert_int_equal(0, system(cmd));
	snprintf(other, sizeof(other), "%s/img/b/disk.raw", root);
	fake_fd(root, one, 21, &files[0]);
	fake_fd(root, other, 22, &files[1]);

	inv_sync(&d, vm, &snap, NULL);
	expect_int("one drive", 1, vm->nr_disks);
	expect_int("named by the command line", VM_SRC_CMDLINE, disk_named(vm, "vol-a")->source);
	expect_int("its identity is the image's", (long long)files[0].ino,
		   (long long)disk_named(vm, "vol-a")->ino);
	free(vm);

	vm = vm_from(argv, ARRAY_SIZE(argv));
	snap.nr_files = 2;
	inv_sync(&d, vm, &snap, NULL);
	expect_int("two images of its name: none taken", 0, disk_named(vm, "vol-a")->resolved);
	expect_int("both listed by their paths, beside it", 3, vm->nr_disks);
	/* One of them closes: the other, a drive of its own, is not taken for it. */
	files[0] = files[1];
	snap.nr_files = 1;
	inv_sync(&d, vm, &snap, NULL);
	expect_int("still not taken", 0, disk_named(vm, "vol-a")->resolved);
	expect_int("the other stays itself", (long long)files[0].ino,
		   (long long)disk_named(vm, other)->ino);
	free(vm);
	rm_rf(root);
}

/*
 * QEMU locks every image it opens, not only the guest's disks: backing
 * files (qcow2 names them in its header), CD-ROM media. Those are no
 * drives of their own; a backing file's reads count on the drive above
 * it. A drive passed as /dev/fdset/N (-add-fd) is found by its fd.
 */
static void test_backing_files_and_media_are_not_drives(void **state)
{
	char root[] = "/tmp/vmprobe-unit-img.XXXXXX", cmd[700];
	char top[128], base[128], named[128], nbase[128], iso[128], passed[128];
	char cdrom_opt[200], named_opt[200];
	struct vm_file files[5];
	struct config c = { 0 };
	struct discovery d = { .cfg = &c };
	const struct vm_disk *disk;
	struct vm *vm;

	fake_proc(root, NULL, &c);
	snprintf(top, sizeof(top), "%s/img/hot.qcow2", root);
	snprintf(base, sizeof(base), "%s/img/base.raw", root);
	snprintf(named, sizeof(named), "%s/img/named.qcow2", root);
	snprintf(nbase, sizeof(nbase), "%s/img/nbase.raw", root);
	snprintf(iso, sizeof(iso), "%s/img/install.iso", root);
	snprintf(passed, sizeof(passed), "%s/img/passed.raw", root);
	write_qcow2(top, "base.raw"); /* relative to the image naming it */
	write_qcow2(named, nbase);
	snprintf(cmd, sizeof(cmd), "touch %s %s %s %s", base, nbase, iso, passed);
	assert_int_equal(0, system(cmd));
	fake_fd(root, top, 30, &files[0]);
	fake_fd(root, base, 31, &files[1]);
	fake_fd(root, named, 32, &files[2]);
	fake_fd(root, nbase, 33, &files[3]);
	fake_fd(root, iso, 34, &files[4]);
	/* -add-fd: QEMU dups fd 40; the dup (41) is what the drive uses. */
	assert_int_equal(0, symlink(passed, (snprintf(cmd, sizeof(cmd), "%s/4242/fd/40", root), cmd)));
	snprintf(cdrom_opt, sizeof(cdrom_opt), "file=%s,media=cdrom,if=ide", iso);
	snprintf(named_opt, sizeof(named_opt), "file=%s,format=qcow2,if=none,id=d0", named);
	{
		char *const argv[] = {
			"qemu-system-x86_64", "-name", "img",
			"-drive", cdrom_opt,
			"-drive", named_opt, "-device", "virtio-blk-pci,drive=d0,id=named",
			"-add-fd", "fd=40,set=3",
			"-drive", "file=/dev/fdset/3,format=raw,if=none,id=d1",
			"-device", "virtio-blk-pci,drive=d1,id=passed",
		};
		struct vm_file more[6];

		memcpy(more, files, sizeof(files));
		fake_fd(root, passed, 41, &more[5]);
		vm = vm_from(argv, ARRAY_SIZE(argv));
		inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .files = more, .nr_files = 6 },
		     NULL);
	}
	expect_int("drives: the named one, the fd-passed one, the hot-plugged one", 3,
		   vm->nr_disks);
	disk = disk_named(vm, "named");
	expect_int("the named drive's backing file is its own", 1, disk->nr_backing);
	expect_int("its reads count on it", 1,
		   vm_disk_has_file(disk, files[3].dev, files[3].ino));
	expect_int("the /dev/fdset drive is found by its fd", 1,
		   disk_named(vm, "passed")->resolved);
	disk = disk_named(vm, top);
	expect_int("the hot-plugged qcow2 is learned from its fd", VM_SRC_FD, disk->source);
	expect_int("with its backing file", 1, vm_disk_has_file(disk, files[1].dev, files[1].ino));
	for (int i = 0; i < vm->nr_disks; i++) {
		expect_int("the backing file is no drive", 1, strcmp(vm->disks[i].spec.label, base) != 0);
		expect_int("the CD-ROM is no drive", 1, strcmp(vm->disks[i].spec.label, iso) != 0);
		expect_int("the fd-passed image is not listed twice", 1,
			   strcmp(vm->disks[i].spec.label, passed) != 0);
	}
	rm_rf(root);
	free(vm);
}

/*
 * libvirt moves a drive to a new image under the same alias (virsh
 * blockcopy --pivot, Nova's volume swap): the same drive, found again on
 * its new image, its probes' state (and so its counters) kept. While the
 * copy runs, its target is an image nothing names; at the pivot it is the
 * drive's.
 */
static void test_libvirt_pivot_keeps_the_drive(void **state)
{
	char root[] = "/tmp/vmprobe-unit-pivot.XXXXXX", cmd[700], a[128], b[128];
	char *const argv[] = { "qemu-system-x86_64", "-name", "guest=pivot" };
	struct libvirt_domain *dom = calloc(1, sizeof(*dom));
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct config c = { 0 };
	struct discovery d = { .cfg = &c };
	struct vm_file files[2];
	int marker;
	const struct vm_disk *disk;

	assert_non_null(dom);
	fake_proc(root, NULL, &c);
	snprintf(a, sizeof(a), "%s/img/a.raw", root);
	snprintf(b, sizeof(b), "%s/img/b.raw", root);
	snprintf(cmd, sizeof(cmd), "touch %s %s", a, b);
	assert_int_equal(0, system(cmd));
	fake_fd(root, a, 30, &files[0]);
	fake_fd(root, b, 31, &files[1]);
	dom->nr_disks = 1;
	dom->disks[0] = (struct vm_drive){ .label = "virtio-disk0", .backend = "file",
					   .format = "raw", .aio = "threads" };
	snprintf(dom->disks[0].file, sizeof(dom->disks[0].file), "%s", a);

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .files = files, .nr_files = 1 },
		 dom);
	expect_int("one drive", 1, vm->nr_disks);
	disk = disk_named(vm, "virtio-disk0");
	expect_int("on its image", (long long)files[0].ino, (long long)disk->ino);
	vm->disks[0].priv[0] = &marker; /* what a probe keeps of it */

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .files = files, .nr_files = 2 },
		 dom);
	expect_int("while the copy runs, its target is a drive of its own", 2, vm->nr_disks);

	snprintf(dom->disks[0].file, sizeof(dom->disks[0].file), "%s", b);
	inv_sync(&d, vm,
		 &(struct vm_snapshot){ .fds_read = true, .files = &files[1], .nr_files = 1 }, dom);
	expect_int("after the pivot, one drive", 1, vm->nr_disks);
	disk = disk_named(vm, "virtio-disk0");
	expect_int("the same drive: its probe's state is kept", 1, disk->priv[0] == &marker);
	expect_str("on the new image", b, disk->spec.file);
	expect_int("found there", (long long)files[1].ino, (long long)disk->ino);
	expect_int("and open there", 1, disk->open);
	rm_rf(root);
	free(dom);
	free(vm);
}

/*
 * A drive of the command line unplugged over QMP (device_del: QEMU closes
 * its image) goes once its image stays closed with nothing opened in its
 * place, and the command line, which still names it, does not bring it
 * back. Closed at one walk and open again at the next (QEMU reopening
 * it), it stays. Closed while another image opened, it moved there. A
 * walk that could not read every fd concludes nothing; under libvirt,
 * libvirt's state alone says. The wait is slept, never raced: 0.3 s > 0.2 s.
 */
/*
 * A QEMU of two command-line drives, vol-a on img/a.raw and vol-b on
 * img/b.raw, and img/other.raw, which nothing names, in a fake /proc.
 */
struct two_drives {
	char root[64], a[128], b[128], other[128], argv_a[160], argv_b[160];
	char *argv[11];
	struct config c;
	struct discovery d;
};

static void two_drives_init(struct two_drives *t)
{
	char cmd[600];

	memset(t, 0, sizeof(*t));
	snprintf(t->root, sizeof(t->root), "/tmp/vmprobe-unit-unplug.XXXXXX");
	fake_proc(t->root, NULL, &t->c);
	t->d.cfg = &t->c;
	snprintf(t->a, sizeof(t->a), "%s/img/a.raw", t->root);
	snprintf(t->b, sizeof(t->b), "%s/img/b.raw", t->root);
	snprintf(t->other, sizeof(t->other), "%s/img/other.raw", t->root);
	snprintf(cmd, sizeof(cmd), "touch %s %s %s", t->a, t->b, t->other);
	assert_int_equal(0, system(cmd));
	snprintf(t->argv_a, sizeof(t->argv_a), "file=%s,format=raw,if=none,id=d0", t->a);
	snprintf(t->argv_b, sizeof(t->argv_b), "file=%s,format=raw,if=none,id=d1", t->b);
	memcpy(t->argv, (char *[]){ "qemu-system-x86_64", "-name", "unplug", "-drive", t->argv_a,
				    "-device", "virtio-blk-pci,drive=d0,id=vol-a", "-drive", t->argv_b,
				    "-device", "virtio-blk-pci,drive=d1,id=vol-b" }, sizeof(t->argv));
}

/*
 * vol-a's image was found closed at the last walk: looked at again at the
 * next scan. 0.3 s on (> 0.2 s), a walk that could not read every fd
 * concludes nothing; the next one drops it, for good.
 */
static void expect_vol_a_goes(struct discovery *d, struct vm *vm, struct vm_snapshot *snap)
{
	expect_int("looked at again at the next scan", 1, vm->needs_sync);
	usleep(300000);
	snap->fds_partial = true; /* an fd that failed to read (EIO): its image may be that one */
	inv_sync(d, vm, snap, NULL);
	expect_int("a walk that could not read every fd concludes nothing", 2, vm->nr_disks);
	snap->fds_partial = false;
	inv_sync(d, vm, snap, NULL);
	expect_int("unplugged: one drive", 1, vm->nr_disks);
	expect_str("the other one", "vol-b", vm->disks[0].spec.label);
	inv_sync(d, vm, snap, NULL);
	expect_int("the command line does not bring it back", 1, vm->nr_disks);
}

/* vol-a went to the image nothing named (inode `ino`), as at a mirror's pivot: no drive of its own. */
static void expect_vol_a_moved(const struct vm *vm, ino_t ino)
{
	expect_int("vol-a kept", 1, disk_named(vm, "vol-a")->present);
	expect_int("moved there", (long long)ino, (long long)disk_named(vm, "vol-a")->ino);
	expect_int("beside vol-b, and no drive of its own", 2, vm->nr_disks);
}

static void test_unplugged_cmdline_drive_goes(void **state)
{
	struct two_drives t;
	const char *root = t.root, *a = t.a, *b = t.b, *other = t.other;
	struct discovery *d = &t.d;
	struct vm_file files[3];
	struct vm_snapshot snap = { .fds_read = true, .files = files, .nr_files = 2 };
	struct vm *vm;

	two_drives_init(&t);
	fake_fd(root, a, 21, &files[0]);
	fake_fd(root, b, 22, &files[1]);
	fake_fd(root, other, 23, &files[2]);
	vm = vm_from(t.argv, ARRAY_SIZE(t.argv));

	inv_sync(d, vm, &snap, NULL);
	expect_int("two drives", 2, vm->nr_disks);
	/* vol-a's image closes for one walk, then is open again: QEMU reopened it. */
	files[0] = files[1];
	snap.nr_files = 1;
	inv_sync(d, vm, &snap, NULL);
	fake_fd(root, a, 24, &files[0]);
	snap.nr_files = 2;
	usleep(300000);
	vm->needs_sync = false; /* as vm_sync() does before a sync */
	inv_sync(d, vm, &snap, NULL);
	expect_int("reopened: still two drives", 2, vm->nr_disks);
	expect_int("vol-a among them, named by the command line", VM_SRC_CMDLINE,
		   disk_named(vm, "vol-a")->source);
	expect_int("and it is not looked at again", 0, vm->needs_sync);
	/* Now closed for good. */
	files[0] = files[1];
	snap.nr_files = 1;
	vm->needs_sync = false;
	inv_sync(d, vm, &snap, NULL);
	expect_vol_a_goes(d, vm, &snap);
	free(vm);

	/* Closed while an image nothing names opened: it went there, not away. */
	vm = vm_from(t.argv, ARRAY_SIZE(t.argv));
	fake_fd(root, a, 25, &files[0]);
	fake_fd(root, b, 26, &files[1]);
	snap.nr_files = 2;
	inv_sync(d, vm, &snap, NULL);
	files[0] = files[1];
	files[1] = files[2];
	usleep(300000);
	inv_sync(d, vm, &snap, NULL);
	usleep(300000);
	inv_sync(d, vm, &snap, NULL);
	expect_vol_a_moved(vm, files[1].ino);
	free(vm);

	/* A VM libvirt managed, its state unreadable now: libvirt's word only. */
	vm = vm_from(t.argv, ARRAY_SIZE(t.argv));
	vm->libvirt_seen = true;
	fake_fd(root, a, 27, &files[0]);
	fake_fd(root, b, 28, &files[1]);
	snap.nr_files = 2;
	inv_sync(d, vm, &snap, NULL);
	files[0] = files[1];
	snap.nr_files = 1;
	inv_sync(d, vm, &snap, NULL);
	usleep(300000);
	inv_sync(d, vm, &snap, NULL);
	expect_int("under libvirt, a closed image drops no drive", 2, vm->nr_disks);
	free(vm);
	rm_rf(root);
}

/*
 * QEMU's first thread after its main one (task 4243 of the fake /proc),
 * started `ago` seconds ago: how vmprobe tells when QEMU was exec'd.
 */
static void qemu_started_ago(const char *root, double ago)
{
	char path[200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/4242/task", root);
	mkdir(path, 0755);
	strncat(path, "/4243", sizeof(path) - strlen(path) - 1);
	mkdir(path, 0755);
	strncat(path, "/stat", sizeof(path) - strlen(path) - 1);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "4243 (call_rcu) S 1 1 1 0 -1 4194368 0 0 0 0 0 0 0 0 20 0 1 0 %llu 0 0\n",
		(unsigned long long)((boottime_ns() / 1e9 - ago) * sysconf(_SC_CLK_TCK)));
	fclose(f);
}

/*
 * vmprobe started after a command-line drive was unplugged: its image is
 * not open at vmprobe's first walk. In a QEMU exec'd seconds ago (or one
 * whose age cannot be told) that may be QEMU still opening it: the drive
 * stays. In one exec'd long ago it was unplugged, whatever else is open
 * (no move is inferred: nothing links them in time), unless an fd may be
 * its image under another identity (the path QEMU opened); a walk that
 * could not read every fd concludes nothing.
 */
static void test_cmdline_drive_never_open_in_an_old_qemu_goes(void **state)
{
	struct two_drives t;
	const char *root = t.root;
	struct discovery *d = &t.d;
	struct vm_file files[2];
	struct vm_snapshot snap = { .fds_read = true, .files = files, .nr_files = 1 };
	struct vm *vm;

	two_drives_init(&t);
	fake_fd(root, t.b, 21, &files[0]); /* vol-b's image open, vol-a's not */

	/* No thread to tell QEMU's age by, then one exec'd 1 s ago. */
	for (int young = 0; young < 2; young++) {
		if (young)
			qemu_started_ago(root, 1);
		vm = vm_from(t.argv, ARRAY_SIZE(t.argv));
		inv_sync(d, vm, &snap, NULL);
		usleep(300000);
		inv_sync(d, vm, &snap, NULL);
		expect_int(young ? "a QEMU just exec'd keeps both drives"
				 : "a QEMU of unknown age keeps both drives", 2, vm->nr_disks);
		expect_int("vol-a not open", 0, disk_named(vm, "vol-a")->open);
		free(vm);
	}

	/* Exec'd long ago. */
	qemu_started_ago(root, 60);
	vm = vm_from(t.argv, ARRAY_SIZE(t.argv));
	inv_sync(d, vm, &snap, NULL);
	expect_int("one walk concludes nothing", 2, vm->nr_disks);
	expect_vol_a_goes(d, vm, &snap);
	free(vm);

	/* An image nothing names is open too: vol-a still goes; that image is a drive of its own. */
	vm = vm_from(t.argv, ARRAY_SIZE(t.argv));
	fake_fd(root, t.other, 22, &files[1]);
	snap.nr_files = 2;
	inv_sync(d, vm, &snap, NULL);
	usleep(300000);
	inv_sync(d, vm, &snap, NULL);
	expect_int("vol-a gone, no move inferred", 0, has_disk(vm, "vol-a"));
	expect_int("the other image labelled by its path", 1, has_disk(vm, t.other));
	expect_int("beside vol-b", 2, vm->nr_disks);
	free(vm);

	/* An fd on the path vol-a names, another file now (replaced since): it stays. */
	vm = vm_from(t.argv, ARRAY_SIZE(t.argv));
	snprintf(files[1].path, sizeof(files[1].path), "%s (deleted)", t.a);
	inv_sync(d, vm, &snap, NULL);
	usleep(300000);
	inv_sync(d, vm, &snap, NULL);
	expect_int("vol-a kept: an fd is on the path it names", 1, has_disk(vm, "vol-a"));
	free(vm);
	rm_rf(root);
}

/*
 * A NIC passed by fd (-netdev tap,fd=33) that was unplugged stays gone
 * when QEMU reuses the fd number for something else; a macvtap fd
 * (/dev/tapN), which has no tap, stays listed.
 */
static void test_unplugged_fd_nic_stays_gone_when_its_fd_is_reused(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=reuse",
		"-netdev", "tap,fd=33,id=hostnet0",
		"-device", "virtio-net-pci,netdev=hostnet0,id=net0",
		"-netdev", "tap,fd=34,id=hostnet1",
		"-device", "virtio-net-pci,netdev=hostnet1,id=net1",
		"-netdev", "socket,fd=35,id=hostnet2",
		"-device", "virtio-net-pci,netdev=hostnet2,id=net2",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	int open_fds[] = { 33, 34, 35 };
	struct vm_tun tuns[] = { { 33, "vnet3" } };
	int macvtaps[] = { 34 };
	struct vm_file reused = { .fd = 33, .dev = 1, .ino = 100, .mode = S_IFREG,
				  .path = "/var/log/other.log" };
	struct discovery d = { .cfg = &cfg };

	vm->fds = open_fds; /* what the walks of the fd table see: 33 open again below */
	vm->nr_fds = ARRAY_SIZE(open_fds);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = tuns, .nr_tuns = 1,
						 .macvtaps = macvtaps, .nr_macvtaps = 1 },
		 NULL);
	expect_int("three NICs", 3, vm->nr_ifaces);
	expect_str("the tap", "vnet3", iface_named(vm, "vnet3")->tap);
	expect_str("the macvtap NIC has no tap", "", iface_named(vm, "net1")->tap);
	expect_str("nor the socket NIC", "", iface_named(vm, "net2")->tap);

	/* net0 unplugged: fd 33 closed, then reused for a file. */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .macvtaps = macvtaps,
						 .nr_macvtaps = 1 },
		 NULL);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .files = &reused, .nr_files = 1,
						 .macvtaps = macvtaps, .nr_macvtaps = 1 },
		 NULL);
	expect_int("the unplugged NIC does not come back; the macvtap and socket ones stay", 2,
		   vm->nr_ifaces);
	expect_str("the macvtap NIC is there", "net1", iface_named(vm, "net1")->label);
	expect_str("so is the socket NIC, its fd open", "net2", iface_named(vm, "net2")->label);
	free(vm);

	/* Without CAP_SYS_PTRACE the fds are listed, not read: every NIC stays, unmeasured. */
	vm = vm_from(argv, ARRAY_SIZE(argv));
	vm->fds = open_fds;
	vm->nr_fds = ARRAY_SIZE(open_fds);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .fds_opaque = true }, NULL);
	expect_int("what the fds are cannot be read: the three NICs are listed", 3, vm->nr_ifaces);
	expect_int("net0 without its tap", 1, iface_named(vm, "net0")->tap[0] == '\0');
	free(vm);
}

/* Whether the VM lists a NIC on `tap`, present. */
static int has_tap(const struct vm *vm, const char *tap)
{
	for (int i = 0; i < vm->nr_ifaces; i++)
		if (vm->ifaces[i].present && !strcmp(vm->ifaces[i].tap, tap))
			return 1;
	return 0;
}

/*
 * A tap QEMU opened itself (-netdev tap with neither ifname= nor fd=, or
 * -netdev bridge) is the NIC's, by command-line order, not a second NIC
 * learned from its fd beside a first one "not found".
 */
static void test_taps_qemu_opened_are_their_nics_in_order(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=own",
		"-netdev", "tap,id=n0,queues=2",
		"-device", "virtio-net-pci,netdev=n0,id=nic0",
		"-netdev", "tap,id=n1,ifname=vnet9",
		"-device", "virtio-net-pci,netdev=n1,id=nic1",
		"-netdev", "bridge,id=n2,br=br0",
		"-device", "virtio-net-pci,netdev=n2,id=ua-nic2",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	/* Not in fd order; tap0 has two queues; tap7 was hot-plugged since. */
	struct vm_tun tuns[] = { { 31, "tap7" }, { 14, "vnet9" }, { 12, "tap0" }, { 15, "tap1" },
				 { 13, "tap0" } };
	struct discovery d = { .cfg = &cfg };

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = tuns, .nr_tuns = 5 },
		 NULL);
	expect_int("four NICs, each once", 4, vm->nr_ifaces);
	expect_int("the first NIC QEMU opened is on the first tap of its own", 1,
		   has_tap(vm, "tap0"));
	expect_str("labelled by it, as a named one", "tap0", iface_named(vm, "tap0")->tap);
	expect_str("the named tap stays its NIC's", "vnet9", iface_named(vm, "vnet9")->tap);
	expect_str("the bridge helper's tap is the next one, labelled by the device id",
		   "tap1", iface_named(vm, "nic2")->tap);
	expect_int("the hot-plugged tap is one more NIC", VM_SRC_FD,
		   iface_named(vm, "tap7")->source);
	for (int i = 0; i < vm->nr_ifaces; i++)
		expect_int("every NIC has its tap", 1, vm->ifaces[i].tap[0] != '\0');
	free(vm);
}

/*
 * A NIC keeps the tap it was tied to: the first of two unplugged, the
 * second keeps its own (and its label); a tap hot-plugged on a lower fd
 * is one more NIC; a walk that cannot read the fds changes nothing.
 */
static void test_qemu_opened_taps_stay_tied(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=tied",
		"-netdev", "tap,id=n0",
		"-device", "virtio-net-pci,netdev=n0,id=ua-first",
		"-netdev", "tap,id=n1",
		"-device", "virtio-net-pci,netdev=n1,id=ua-second",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct vm_tun both[] = { { 20, "tap0" }, { 21, "tap1" } };
	struct vm_tun later[] = { { 21, "tap1" }, { 9, "tap2" } };
	struct discovery d = { .cfg = &cfg };

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = both, .nr_tuns = 2 },
		 NULL);
	expect_str("first is tap0", "tap0", iface_named(vm, "first")->tap);
	expect_str("second is tap1", "tap1", iface_named(vm, "second")->tap);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = false }, NULL);
	expect_int("a walk that could not read the fds: both NICs keep their taps", 2,
		   has_tap(vm, "tap0") + has_tap(vm, "tap1"));
	/* first unplugged (tap0 closed); a tap hot-plugged meanwhile got a lower fd. */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = later, .nr_tuns = 2 },
		 NULL);
	expect_int("the unplugged NIC goes", 0, has_tap(vm, "tap0"));
	expect_str("second keeps its tap", "tap1", iface_named(vm, "second")->tap);
	expect_int("the hot-plugged tap is a NIC of its own", VM_SRC_FD,
		   iface_named(vm, "tap2")->source);
	expect_int("two NICs: second and the hot-plugged one", 2, vm->nr_ifaces);
	free(vm);

	/* A walk that missed an fd ties nothing: tap0's would have gone to second. */
	vm = vm_from(argv, ARRAY_SIZE(argv));
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .fds_partial = true,
						 .tuns = &both[1], .nr_tuns = 1 }, NULL);
	expect_int("no tie from a partial walk: tap1 is a tap learned from its fd", VM_SRC_FD,
		   iface_named(vm, "tap1")->source);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = both, .nr_tuns = 2 },
		 NULL);
	expect_str("the next full walk ties first to tap0", "tap0", iface_named(vm, "first")->tap);
	expect_str("and second to tap1", "tap1", iface_named(vm, "second")->tap);
	free(vm);
}

/* ifname=NAME%d is a template: the tap the kernel named from it is the NIC's. */
static void test_ifname_template_is_a_tap_qemu_opened(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=tpl",
		"-netdev", "tap,id=n0,ifname=vm1tap%d",
		"-device", "virtio-net-pci,netdev=n0,id=nic0",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct vm_tun tun[] = { { 12, "vm1tap0" } };
	struct discovery d = { .cfg = &cfg };

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	expect_str("before QEMU opens it, no tap named by the template", "", vm->ifaces[0].tap);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = tun, .nr_tuns = 1 },
		 NULL);
	expect_int("one NIC", 1, vm->nr_ifaces);
	expect_str("on the tap the kernel named", "vm1tap0", vm->ifaces[0].tap);
	expect_int("from the command line", VM_SRC_CMDLINE, vm->ifaces[0].source);
	free(vm);
}

/*
 * A command-line NIC whose tun QEMU holds goes when QEMU closes it
 * (device_del and netdev_del), and does not come back, where the command
 * line still names it; one whose tun was never seen open stays.
 */
static void test_unplugged_cmdline_tap_nic_goes(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "guest=unplug",
		"-netdev", "tap,id=n0,ifname=vnet5",
		"-device", "virtio-net-pci,netdev=n0,id=nic0",
		"-netdev", "tap,id=n1",
		"-device", "virtio-net-pci,netdev=n1,id=nic1",
		"-netdev", "tap,id=n2,ifname=vnet6",
		"-device", "virtio-net-pci,netdev=n2,id=nic2",
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct vm_tun both[] = { { 20, "vnet5" }, { 21, "tap0" } };
	struct vm_tun reused[] = { { 20, "tap9" } };
	int open_tuns[] = { 20, 21 };
	struct discovery d = { .cfg = &cfg };

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = both, .nr_tuns = 2 },
		 NULL);
	expect_int("three NICs", 3, vm->nr_ifaces);
	expect_int("vnet6 not open yet: listed by its name", 1, has_tap(vm, "vnet6"));

	/* What the fds are cannot be read: nothing is concluded. */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .fds_opaque = true }, NULL);
	expect_int("an opaque walk drops no NIC", 2, has_tap(vm, "vnet5") + has_tap(vm, "tap0"));

	/*
	 * Both taps deleted from under QEMU (ip link del): their fds stay
	 * open, on no tap: the NICs stay, on the taps they had, not found.
	 */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tun_fds = open_tuns,
						 .nr_tun_fds = 2 }, NULL);
	expect_int("a deleted tap's NIC stays while QEMU holds its fd", 2,
		   has_tap(vm, "vnet5") + has_tap(vm, "tap0"));
	/* fd 20 reused for another tap (hot-plugged): vnet5's tun is closed. */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = reused, .nr_tuns = 1,
						 .tun_fds = open_tuns, .nr_tun_fds = 2 }, NULL);
	expect_int("its fd on another tap: vnet5's NIC goes", 0, has_tap(vm, "vnet5"));
	expect_int("tap0's stays, its fd on no tap", 1, has_tap(vm, "tap0"));

	/* Both taps closed. */
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	expect_int("the one QEMU opened goes once its tun is closed", 0, has_tap(vm, "tap0"));
	expect_int("no tapless NIC in their place", 1, vm->nr_ifaces);
	expect_int("vnet6, never seen open, stays", 1, has_tap(vm, "vnet6"));
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	expect_int("and they do not come back", 1, vm->nr_ifaces);
	free(vm);

	/* libvirt's state says what goes for a VM it manages: not the fds. */
	vm = vm_from(argv, ARRAY_SIZE(argv));
	vm->libvirt_seen = true;
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true, .tuns = both, .nr_tuns = 2 },
		 NULL);
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	expect_int("a libvirt VM's NIC stays by its tun", 1, has_tap(vm, "vnet5"));
	free(vm);
}

/*
 * The paths a VM names (its command line, libvirt's state, its images'
 * headers) are found inside its own root: `..` and absolute symbolic
 * links stay there, and never reach a file of the host's.
 */
static void test_paths_stay_inside_the_vms_root(void **state)
{
	char root[] = "/tmp/vmprobe-unit-root.XXXXXX", vmroot[64], cmd[700], top[160], up[200];
	struct config c = { 0 };
	struct discovery d = { .cfg = &c };
	struct stat host, own;
	const struct vm_disk *disk;
	struct vm *vm;

	/*
	 * The VM's root is vm/, with its own /outside.raw; the host's file of
	 * that name is beside it, in root/: what .. from the VM's root reached.
	 */
	fake_proc(root, "../vm", &c);
	snprintf(vmroot, sizeof(vmroot), "%s/vm", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/img && touch %s/outside.raw %s/outside.raw && "
		 "ln -s /outside.raw %s/img/link.raw", vmroot, root, vmroot, vmroot);
	assert_int_equal(0, system(cmd));
	snprintf(cmd, sizeof(cmd), "%s/outside.raw", root);
	assert_int_equal(0, stat(cmd, &host));
	snprintf(cmd, sizeof(cmd), "%s/outside.raw", vmroot);
	assert_int_equal(0, stat(cmd, &own));
	snprintf(top, sizeof(top), "%s/vm/img/top.qcow2", root);
	write_qcow2(top, "../../outside.raw");
	snprintf(up, sizeof(up), "file=/../outside.raw,format=raw,if=none,id=d1");
	{
		char *const argv[] = {
			"qemu-system-x86_64", "-name", "rooted",
			"-drive", "file=/img/top.qcow2,format=qcow2,if=none,id=d0",
			"-device", "virtio-blk-pci,drive=d0,id=top",
			"-drive", up, "-device", "virtio-blk-pci,drive=d1,id=up",
			"-drive", "file=/img/link.raw,format=raw,if=none,id=d2",
			"-device", "virtio-blk-pci,drive=d2,id=link",
		};

		vm = vm_from(argv, ARRAY_SIZE(argv));
	}
	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	disk = disk_named(vm, "top");
	expect_int("the image in the VM's root is found", 1, disk->resolved);
	expect_int("its backing name climbs to the root, no further: the VM's file", 1,
		   disk->nr_backing == 1 && disk->backing[0].ino == own.st_ino);
	disk = disk_named(vm, "up");
	expect_int("/.. is the root itself: the VM's file, not the host's", 1,
		   disk->resolved && disk->ino == own.st_ino && disk->ino != host.st_ino);
	disk = disk_named(vm, "link");
	expect_int("an absolute link is followed inside the root", 1,
		   disk->resolved && disk->ino == own.st_ino);
	rm_rf(root);
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

	inv_sync(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	expect_int("both drives listed", 2, vm->nr_disks);
	expect_int("nbd not measured", 0, disk_named(vm, "vol-e")->cov.measured);
	expect_str("nbd's reason", "nbd: QEMU's built-in NBD client has no hook vmprobe can use",
		   disk_named(vm, "vol-e")->cov.reason);
	expect_str("gluster's reason", "gluster: no probe for this backend",
		   disk_named(vm, "vol-g")->cov.reason);
	free(vm);
}

/* A probe serve could not load (yet) is named, with why, in what it would measure. */
static void test_down_probes_are_the_reason(void **state)
{
	char *const argv[] = {
		"qemu-system-x86_64", "-name", "d",
		"-drive", "file=/images/a.raw,if=none,id=a0",
		"-device", "virtio-blk-pci,drive=a0,id=vol-a",
		"-drive", "file=rbd:pool/img,if=none,id=r0",
		"-device", "virtio-blk-pci,drive=r0,id=vol-r",
		"-netdev", "tap,id=n0,ifname=vnet9",
		"-device", "virtio-net-pci,netdev=n0,id=net0",
	};
	static const struct probe_ops disk = { .name = "disk" }, netdisk = { .name = "netdisk" },
				      net = { .name = "net" };
	static const struct probe_set down = {
		.nr_down = 3,
		.down = { { .ops = &disk, .why = "Cannot allocate memory" },
			  { .ops = &netdisk, .why = "Cannot allocate memory" },
			  { .ops = &net, .why = "no kernel BTF" } },
	};
	struct vm *vm = vm_from(argv, ARRAY_SIZE(argv));
	struct discovery d = { .cfg = &cfg };
	const struct coverage *a, *r, *n;

	inventory_update(&d, vm, &(struct vm_snapshot){ .fds_read = true }, NULL);
	inventory_settle(vm, &down);
	a = &disk_named(vm, "vol-a")->cov;
	r = &disk_named(vm, "vol-r")->cov;
	n = &iface_named(vm, "vnet9")->cov;
	expect_str("a local image", "local image: the disk probe is not loaded (Cannot allocate memory)",
		   a->reason);
	expect_str("an rbd drive", "rbd: the network-disk probe is not loaded (Cannot allocate memory)",
		   r->reason);
	expect_str("a tap", "tap: the network probe is not loaded (no kernel BTF)", n->reason);
	expect_int("none measured", 0, a->measured + r->measured + n->measured);
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
		cmocka_unit_test(test_network_disk_without_protocol_has_backend_unknown),
		cmocka_unit_test(test_iscsi_name_without_lun_is_lun_0),
		cmocka_unit_test(test_libvirt_volume_disk_is_the_image_qemu_opened),
		cmocka_unit_test(test_libvirt_status_file_by_pid_or_pod_pid),
		cmocka_unit_test(test_tapless_nic_from_cmdline_and_libvirt_is_listed_once),
		cmocka_unit_test(test_backing_files_and_media_are_not_drives),
		cmocka_unit_test(test_unresolvable_named_drive_is_its_open_image),
		cmocka_unit_test(test_hotplug_and_unplug_follow_libvirt_state),
		cmocka_unit_test(test_locked_image_fd_is_a_drive_labelled_by_its_path),
		cmocka_unit_test(test_libvirt_pivot_keeps_the_drive),
		cmocka_unit_test(test_unplugged_cmdline_drive_goes),
		cmocka_unit_test(test_cmdline_drive_never_open_in_an_old_qemu_goes),
		cmocka_unit_test(test_unplugged_fd_nic_stays_gone_when_its_fd_is_reused),
		cmocka_unit_test(test_taps_qemu_opened_are_their_nics_in_order),
		cmocka_unit_test(test_qemu_opened_taps_stay_tied),
		cmocka_unit_test(test_ifname_template_is_a_tap_qemu_opened),
		cmocka_unit_test(test_unplugged_cmdline_tap_nic_goes),
		cmocka_unit_test(test_paths_stay_inside_the_vms_root),
		cmocka_unit_test(test_unclaimed_network_storage_says_why),
		cmocka_unit_test(test_down_probes_are_the_reason),
		cmocka_unit_test(test_interface_label_is_the_kubevirt_name_else_the_tap),
	};

	log_max_level = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
