// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Which drive of a VM a library session is. The libraries keep what the
 * drive names in the session's own memory: libiscsi's context holds the
 * target's name as a C string, librbd's ImageCtx the image's name as a
 * std::string. Both are read from the QEMU process (process_vm_readv,
 * CAP_SYS_PTRACE) and compared with what the VM's drives name, without
 * relying on either library's struct layout. A session no drive matches
 * exactly once is left unmatched (and said so), never guessed.
 */
#define _GNU_SOURCE
#include "probes/netdisk/netdisk_probe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/discovery.h"

/* How much of the session's object is searched. */
#define ISCSI_CTX_SCAN 8192
#define RBD_CTX_SCAN 32768

/* Reads len bytes at addr of process pid; the bytes read (short at an unmapped end). */
static size_t mem_read(pid_t pid, __u64 addr, void *buf, size_t len)
{
	size_t done = 0;

	/* Page by page: a read that crosses into an unmapped page fails whole. */
	while (done < len) {
		size_t chunk = 4096 - ((addr + done) & 4095);
		struct iovec local, remote;
		ssize_t n;

		if (chunk > len - done)
			chunk = len - done;
		local = (struct iovec){ (char *)buf + done, chunk };
		remote = (struct iovec){ (void *)(uintptr_t)(addr + done), chunk };
		n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* Whether buf holds `s` as a whole C string (NUL before and after). */
static bool has_cstring(const char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	for (const char *p = buf; n && (p = memmem(p, len - (p - buf), s, n)); p++)
		if ((p == buf || p[-1] == '\0') && (size_t)(p - buf) + n < len && p[n] == '\0')
			return true;
	return false;
}

/*
 * Whether the object at addr (its first len bytes in buf) holds a
 * libstdc++ std::string equal to s: a pointer, the length, then either
 * the characters in place (short strings) or a capacity.
 */
static bool has_std_string(pid_t pid, __u64 addr, const char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);
	char heap[256];

	if (!n || n >= sizeof(heap))
		return false;
	for (size_t o = 0; o + 32 <= len; o += 8) {
		__u64 ptr, slen;

		memcpy(&ptr, buf + o, 8);
		memcpy(&slen, buf + o + 8, 8);
		if (slen != n)
			continue;
		if (ptr == addr + o + 16 && !memcmp(buf + o + 16, s, n))
			return true;
		if (ptr != addr + o + 16 && mem_read(pid, ptr, heap, n) == n && !memcmp(heap, s, n))
			return true;
	}
	return false;
}

/* What a drive's session must hold: the rbd image's name, or the iSCSI target's. */
static bool drive_name(const struct vm_disk *disk, const struct netdisk_event *ev, char *out,
		       size_t size)
{
	const char *remote = disk->spec.remote, *slash = strrchr(remote, '/');

	if (!slash)
		return false;
	if (ev->sess.kind == NETDISK_RBD) {
		snprintf(out, size, "%s", slash + 1);
		return out[0];
	}
	/* iSCSI "TARGET/LUN": the LUN must be the request's, where it is known. */
	if (ev->lun != NETDISK_LUN_ANY && (__u32)atoi(slash + 1) != ev->lun)
		return false;
	snprintf(out, size, "%.*s", (int)(slash - remote), remote);
	return out[0];
}

int netdisk_session_drive(const struct vm *vm, const struct netdisk_event *ev)
{
	size_t scan = ev->sess.kind == NETDISK_RBD ? RBD_CTX_SCAN : ISCSI_CTX_SCAN, len;
	char *buf = malloc(scan), name[VM_PATH_MAX];
	int found = -1, matches = 0;

	if (!buf)
		return -1;
	len = mem_read(vm->pid, ev->sess.handle, buf, scan);
	for (int i = 0; len && i < vm->nr_disks; i++) {
		const struct vm_disk *disk = &vm->disks[i];
		bool hit;

		if (!disk->present || strcmp(disk->spec.backend, netdisk_libs[ev->sess.kind].backend) ||
		    !drive_name(disk, ev, name, sizeof(name)))
			continue;
		hit = ev->sess.kind == NETDISK_RBD
			      ? has_std_string(vm->pid, ev->sess.handle, buf, len, name)
			      : has_cstring(buf, len, name);
		if (hit) {
			found = i;
			matches++;
		}
	}
	free(buf);
	return matches == 1 ? found : -1;
}
