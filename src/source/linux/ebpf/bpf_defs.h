/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The few BPF declarations netmon's kernel programs use, so that building them needs clang and
 * nothing else (no libbpf headers, no kernel headers, no generated vmlinux.h).
 *
 * Helper numbers are the kernel's stable UAPI (enum bpf_func_id in include/uapi/linux/bpf.h);
 * kernel structs are declared with only the fields read, under preserve_access_index, so clang
 * emits CO-RE relocations and the loader fixes every offset against the running kernel's BTF.
 */
#ifndef NETMON_BPF_DEFS_H
#define NETMON_BPF_DEFS_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed int __s32;
typedef signed long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))

/* BTF-defined maps, as libbpf and aya read them from the ".maps" section. */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_LPM_TRIE = 11,
};
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};
/* Map flag: LPM tries must be created without preallocation. */
#define BPF_F_NO_PREALLOC 1

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

static void *(*const bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*const bpf_map_update_elem)(void *map, const void *key, const void *value,
					 __u64 flags) = (void *)2;
static __u64 (*const bpf_get_current_pid_tgid)(void) = (void *)14;
static __u64 (*const bpf_get_current_uid_gid)(void) = (void *)15;
static long (*const bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*const bpf_get_current_task)(void) = (void *)35;
static __u64 (*const bpf_get_current_cgroup_id)(void) = (void *)80;
static long (*const bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*const bpf_probe_read_kernel_str)(void *dst, __u32 size,
					       const void *src) = (void *)115;

/* __builtin_preserve_field_info kinds (libbpf's enum bpf_field_info_kind). */
#define BPF_FIELD_EXISTS 2

/* Read one field of a kernel struct at the offset the running kernel's BTF gives. */
#define CORE_READ(dst, src_field_ptr)                                                       \
	bpf_probe_read_kernel((dst), sizeof(*(dst)),                                        \
			      __builtin_preserve_access_index(src_field_ptr))

#endif
