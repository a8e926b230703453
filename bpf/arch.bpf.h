/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What differs between architectures on the BPF side, in one place: the
 * syscall numbers the programs compare, and where pt_regs keeps the number
 * of the syscall a task is in. Built with -D__TARGET_ARCH_$(ARCH).
 */
#ifndef VMPROBE_ARCH_BPF_H
#define VMPROBE_ARCH_BPF_H

#if defined(__TARGET_ARCH_x86)
#define NR_IO_SUBMIT 209
/* The syscall a task is in: pt_regs.orig_ax on x86_64. */
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#else
/* Another architecture needs its numbers here and a vmlinux/ARCH/vmlinux.h. */
#error "vmprobe: no syscall numbers for this architecture in bpf/arch.bpf.h"
#endif

#endif
