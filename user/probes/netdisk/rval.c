// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The chain of loads by which librbd's rbd_aio_get_return_value(c) reaches
 * a request's result, read from its machine code (x86-64): the C function
 * jumps (through the PLT) to librbd::RBD::AioCompletion::get_return_value,
 * which loads the io::AioCompletion from c and jumps to its accessor,
 * which loads rval and returns. Debian 12's librbd (Quincy):
 *     mov (%rdi),%rdi; jmp ...;  mov 0x78(%rdi),%rax; ret
 * Only that family of code is understood: moves of a pointer through
 * memory, jumps, endbr64, a sign extension and the return. Anything else
 * (a call, a branch, a lock) and the result is "not learned": vmprobe then
 * says failed rbd requests are not told apart, it never guesses.
 */
#include "probes/netdisk/rval.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmprobe/netdisk.h"

#define REG_RAX 0
#define REG_RDI 7
#define MAX_STEPS 32
#define MAX_OFFSET 0xffff

static __s32 le32(const __u8 *b)
{
	return (__s32)((__u32)b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16 | (__u32)b[3] << 24);
}

/* What the code did so far: which register holds the chain, the loads on the way. */
struct chain {
	int reg;
	int nr;
	__u32 off[NETDISK_RVAL_LOADS];
	int width[NETDISK_RVAL_LOADS]; /* 8, 4 (sign-extended) or -4 (zero-extended) */
};

/*
 * A mov of 8 or 4 bytes from memory at the chain's register plus a
 * displacement, or between registers: its length, 0 if it is not one or
 * it breaks the chain (a load we cannot place): not understood.
 */
static int move(const __u8 *b, struct chain *c)
{
	int i = 0, rex = 0, mod, reg, rm, len;
	__s32 disp = 0;
	bool wide;

	if ((b[0] & 0xf0) == 0x40)
		rex = b[i++];
	wide = rex & 8;
	if (b[i] != 0x8b && b[i] != 0x89 && !(b[i] == 0x63 && wide))
		return 0;
	mod = b[i + 1] >> 6;
	reg = (b[i + 1] >> 3 & 7) | (rex & 4 ? 8 : 0);
	rm = (b[i + 1] & 7) | (rex & 1 ? 8 : 0);
	len = i + 2;
	if (mod == 3) {
		int dst = b[i] == 0x89 ? rm : reg, src = b[i] == 0x89 ? reg : rm;

		if (b[i] != 0x63 && wide && src == c->reg)
			c->reg = dst;
		else if (dst == c->reg)
			return 0;
		return len;
	}
	/* A store, a SIB byte or RIP-relative: not a step of the chain. */
	if (b[i] == 0x89 || (rm & 7) == 4 || (mod == 0 && (rm & 7) == 5))
		return 0;
	if (mod == 1)
		disp = (__s8)b[len++];
	else if (mod == 2)
		disp = le32(&b[len]), len += 4;
	if (rm != c->reg || disp < 0 || disp > MAX_OFFSET || c->nr == NETDISK_RVAL_LOADS ||
	    (c->nr && c->width[c->nr - 1] != 8))
		return 0;
	c->off[c->nr] = (__u32)disp;
	c->width[c->nr++] = b[i] == 0x63 ? 4 : wide ? 8 : -4;
	c->reg = reg;
	return len;
}

static __u64 cookie_of(const struct chain *c)
{
	__u64 cookie = NETDISK_RVAL_KNOWN;
	int last = c->nr - 1;

	/* The result in %rax, from a load of it: 8 bytes or 4 sign-extended (an ssize_t). */
	if (c->reg != REG_RAX || !c->nr || c->width[last] == -4)
		return 0;
	if (c->width[last] == 8)
		cookie |= NETDISK_RVAL_WIDE;
	cookie |= (__u64)last << NETDISK_RVAL_DEREFS_SHIFT;
	for (int i = 0; i < c->nr; i++)
		cookie |= (__u64)c->off[i] << (16 * i);
	return cookie;
}

__u64 rval_decode(const struct rval_code *code, __u64 pc)
{
	struct chain c = { .reg = REG_RDI };

	for (int step = 0; step < MAX_STEPS; step++) {
		const __u8 *b = code->at(code->ctx, pc, 16);
		__u64 target;
		int n;

		if (!b)
			return 0;
		if (code->plt && code->plt(code->ctx, pc, &target)) {
			pc = target;
		} else if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) {
			pc += 4; /* endbr64 */
		} else if (b[0] == 0xe9) {
			pc += 5 + (__s64)le32(&b[1]);
		} else if (b[0] == 0xeb) {
			pc += 2 + (__s64)(__s8)b[1];
		} else if (b[0] == 0x48 && b[1] == 0x98) {
			/* cltq: the 4 bytes just loaded into %eax, sign-extended. */
			if (c.reg != REG_RAX || !c.nr || c.width[c.nr - 1] != -4)
				return 0;
			c.width[c.nr - 1] = 4;
			pc += 2;
		} else if (b[0] == 0xc3 || (b[0] == 0xf3 && b[1] == 0xc3)) {
			return cookie_of(&c);
		} else if ((n = move(b, &c))) {
			pc += (__u64)n;
		} else {
			return 0;
		}
	}
	return 0;
}

/* ---- the library file ---- */

struct elf_lib {
	Elf *elf;
	const __u8 *image;
	size_t size;
};

static Elf_Scn *section_named(Elf *elf, const char *name, GElf_Shdr *sh)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *n;

		if (gelf_getshdr(scn, sh) && (n = elf_strptr(elf, shstrndx, sh->sh_name)) &&
		    !strcmp(n, name))
			return scn;
	}
	return NULL;
}

static const __u8 *elf_at(void *ctx, __u64 addr, size_t len)
{
	struct elf_lib *lib = ctx;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(lib->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR) || addr < sh.sh_addr ||
		    addr - sh.sh_addr >= sh.sh_size)
			continue;
		/* Near a section's end, bytes past it are read as code: at worst not understood. */
		if (sh.sh_offset + (addr - sh.sh_addr) + len > lib->size)
			return NULL;
		return lib->image + sh.sh_offset + (addr - sh.sh_addr);
	}
	return NULL;
}

/* A dynamic symbol defined in this library, by index: its address, 0 if not defined here. */
static __u64 dynsym_value(Elf *elf, size_t index, const char *name)
{
	GElf_Shdr sh;
	Elf_Scn *scn = section_named(elf, ".dynsym", &sh);
	Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
	size_t nr = data && sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
	GElf_Sym sym;

	for (size_t i = name ? 0 : index; i < nr && (name || i == index); i++) {
		const char *n;

		if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		n = elf_strptr(elf, sh.sh_link, sym.st_name);
		if (!name || (n && !strcmp(n, name)))
			return sym.st_value;
	}
	return 0;
}

/*
 * A PLT stub (jmp *GOT(%rip), after endbr64 or bnd): the function its GOT
 * slot is relocated to, when this library defines it.
 */
static bool elf_plt(void *ctx, __u64 addr, __u64 *target)
{
	struct elf_lib *lib = ctx;
	GElf_Shdr sh, rsh;
	Elf_Scn *rela;
	Elf_Data *data;
	const __u8 *b;
	__u64 got;
	int i = 0;

	if (!(section_named(lib->elf, ".plt", &sh) && addr - sh.sh_addr < sh.sh_size) &&
	    !(section_named(lib->elf, ".plt.sec", &sh) && addr - sh.sh_addr < sh.sh_size))
		return false;
	b = elf_at(ctx, addr, 16);
	if (!b)
		return false;
	if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa)
		i = 4;
	if (b[i] == 0xf2)
		i++;
	if (b[i] != 0xff || b[i + 1] != 0x25)
		return false;
	got = addr + (__u64)i + 6 + (__s64)le32(&b[i + 2]);
	rela = section_named(lib->elf, ".rela.plt", &rsh);
	data = rela ? elf_getdata(rela, NULL) : NULL;
	for (size_t k = 0; data && rsh.sh_entsize && k < rsh.sh_size / rsh.sh_entsize; k++) {
		GElf_Rela r;

		if (gelf_getrela(data, (int)k, &r) && r.r_offset == got) {
			*target = dynsym_value(lib->elf, GELF_R_SYM(r.r_info), NULL);
			return *target != 0;
		}
	}
	return false;
}

__u64 rval_cookie(const char *path)
{
	struct elf_lib lib = { 0 };
	struct rval_code code = { elf_at, elf_plt, &lib };
	struct stat st;
	__u64 entry, cookie = 0;
	void *map = MAP_FAILED;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) || st.st_size <= 0)
		goto out;
	/* Private and writable: libelf may write into its image, never the file. */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED || elf_version(EV_CURRENT) == EV_NONE)
		goto out;
	lib.image = map;
	lib.size = (size_t)st.st_size;
	lib.elf = elf_memory(map, lib.size);
	if (lib.elf && elf_kind(lib.elf) == ELF_K_ELF && gelf_getclass(lib.elf) == ELFCLASS64 &&
	    (entry = dynsym_value(lib.elf, 0, "rbd_aio_get_return_value")))
		cookie = rval_decode(&code, entry);
out:
	if (lib.elf)
		elf_end(lib.elf);
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	return cookie;
}
