/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Opening a tap device: vmprobe check, the tests' stand-in guests, the bench. */
#ifndef VMPROBE_TAPDEV_H
#define VMPROBE_TAPDEV_H

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Opens (creating it if needed) the tap `name`, as QEMU does; fd or -errno. */
static inline int tapdev_open(const char *name)
{
	struct ifreq ifr = {};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

#endif
