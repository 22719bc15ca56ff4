/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * netmon's kernel programs: per-process payload byte counters for TCP and UDP.
 *
 * The socket layer's tracepoints sock:sock_send_length and sock:sock_recv_length (Linux 6.3+)
 * fire in sock_sendmsg/sock_recvmsg, in the calling task, with the byte count the call
 * returned: every send, sendto, sendmsg, sendmmsg, write and sendfile/splice into a socket, and
 * every recv, recvfrom, recvmsg, recvmmsg and read, of every socket family. The programs keep inet sockets (IPv4 and
 * IPv6) of the recorder's network namespace and add the bytes to the calling process's entry
 * in `procs`, keyed by (tgid, start time of the thread-group leader) so that a reused pid is a
 * new entry. The bytes land on whoever made the call: a forked child, or a child using a socket
 * its parent opened, is credited itself.
 *
 * They are attached as raw tracepoints (by name: no tracefs, no kprobes, no fentry, all of which
 * a locked-down kernel may refuse) and read kernel structs through CO-RE relocations, so one
 * object runs on any kernel with BTF.
 *
 * sched:sched_process_exit marks an entry once the last thread of its process has exited:
 * user space then reads its final values once and deletes it.
 */
#include "bpf_defs.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262
#define MSG_PEEK 2
#define IFF_LOOPBACK 0x8

/* --- the kernel structs read, with only the fields read (CO-RE fixes the offsets) --- */

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__u32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	unsigned short skc_family;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct net_device {
	unsigned int flags;
} __attribute__((preserve_access_index));

struct dst_entry {
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	struct dst_entry *sk_dst_cache;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	__u64 start_boottime;
	struct task_struct *group_leader;
	char comm[16];
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

/* --- what user space reads (mirrored by `Key` and `Value` in mod.rs) --- */

/* Counter classes: protocol (tcp, udp, other) x (network, loopback). */
#define PROTO_TCP 0
#define PROTO_UDP 1
#define PROTO_OTHER 2
#define CLASSES 6
#define DIR_IN 0
#define DIR_OUT 1

struct proc_key {
	__u32 tgid;
	__u32 pad;
	/* task->group_leader->start_boottime: ns since boot, suspend included (/proc's starttime). */
	__u64 start_ns;
};

struct proc_val {
	/* bytes[class][dir], class = proto * 2 + loopback; cumulative since the entry was made. */
	__u64 bytes[CLASSES][2];
	/* The thread-group leader's comm when the entry was made, and again at exit. */
	char comm[16];
	__u32 uid;
	/* Set once the last thread has exited: the values above are final. */
	__u32 exited;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct proc_key);
	__type(value, struct proc_val);
} procs SEC(".maps");

/* Bytes of processes that found no room in `procs`: counted, never dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proc_val);
} overflow SEC(".maps");

/* The inode of the network namespace to count (0: every namespace); set by the loader. */
const volatile __u32 target_netns = 0;

static __always_inline int is_loopback4(__u32 addr_be)
{
	/* 127.0.0.0/8; the address is in network byte order, so its first octet is the low byte
	 * on little-endian machines and the high byte on big-endian ones. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (addr_be & 0xff) == 127;
#else
	return (addr_be >> 24) == 127;
#endif
}

/* An IPv6 address as four 32-bit words in network byte order (a plain copy, not a kernel
 * struct, so reading it needs no relocation). */
struct addr6 {
	__u32 w[4];
};

static __always_inline int is_loopback6(const struct addr6 *a)
{
	__u32 w0 = a->w[0], w1 = a->w[1], w2 = a->w[2], w3 = a->w[3];
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	__u32 one = 0x01000000, mapped = 0xffff0000;
#else
	__u32 one = 1, mapped = 0x0000ffff;
#endif
	if (w0 || w1)
		return 0;
	if (w2 == 0 && w3 == one)
		return 1; /* ::1 */
	return w2 == mapped && is_loopback4(w3); /* ::ffff:127.x.y.z */
}

static __always_inline int is_zero6(const struct addr6 *a)
{
	return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]);
}

/*
 * Does this socket's traffic stay on this machine? The cached route says so for connected
 * sockets (it also catches connections to one of this machine's own non-loopback addresses,
 * which go over `lo`); otherwise the addresses decide: a loopback peer, or no peer yet and a
 * socket bound to a loopback address.
 */
static __always_inline int is_loopback(struct sock *sk, __u16 family)
{
	struct dst_entry *dst = 0;
	CORE_READ(&dst, &sk->sk_dst_cache);
	if (dst) {
		struct net_device *dev = 0;
		CORE_READ(&dev, &dst->dev);
		if (dev) {
			unsigned int flags = 0;
			CORE_READ(&flags, &dev->flags);
			return (flags & IFF_LOOPBACK) != 0;
		}
	}
	if (family == AF_INET) {
		__u32 daddr = 0, saddr = 0;
		CORE_READ(&daddr, &sk->__sk_common.skc_daddr);
		if (daddr)
			return is_loopback4(daddr);
		CORE_READ(&saddr, &sk->__sk_common.skc_rcv_saddr);
		return is_loopback4(saddr);
	}
	struct addr6 daddr = {}, saddr = {};
	CORE_READ(&daddr, &sk->__sk_common.skc_v6_daddr);
	if (!is_zero6(&daddr))
		return is_loopback6(&daddr);
	CORE_READ(&saddr, &sk->__sk_common.skc_v6_rcv_saddr);
	return is_loopback6(&saddr);
}

static __always_inline struct proc_val *entry_for_current(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = 0;
	struct proc_key key = {};
	struct proc_val *v;

	CORE_READ(&leader, &task->group_leader);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	CORE_READ(&key.start_ns, &leader->start_boottime);
	v = bpf_map_lookup_elem(&procs, &key);
	if (v)
		return v;

	struct proc_val init = {};
	bpf_probe_read_kernel_str(init.comm, sizeof(init.comm),
				  __builtin_preserve_access_index(&leader->comm));
	init.uid = (__u32)bpf_get_current_uid_gid();
	/* Another thread may have made it meanwhile (EEXIST); the table may be full (E2BIG). */
	bpf_map_update_elem(&procs, &key, &init, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&procs, &key);
	if (v)
		return v;
	__u32 zero = 0;
	return bpf_map_lookup_elem(&overflow, &zero);
}

static __always_inline int count(struct sock *sk, long ret, int dir)
{
	unsigned short family = 0;
	__u16 protocol = 0;
	int proto, class;
	struct proc_val *v;

	if (ret <= 0 || !sk)
		return 0;
	CORE_READ(&family, &sk->__sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (target_netns) {
		struct net *net = 0;
		unsigned int inum = 0;
		CORE_READ(&net, &sk->__sk_common.skc_net.net);
		if (!net)
			return 0;
		CORE_READ(&inum, &net->ns.inum);
		if (inum != target_netns)
			return 0;
	}
	CORE_READ(&protocol, &sk->sk_protocol);
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP)
		proto = PROTO_TCP;
	else if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE)
		proto = PROTO_UDP;
	else
		proto = PROTO_OTHER;
	class = proto * 2 + is_loopback(sk, family);
	if (class < 0 || class >= CLASSES)
		return 0;

	v = entry_for_current();
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->bytes[class][dir], (__u64)ret);
	return 0;
}

/* sock_send_length(struct sock *sk, int ret, int flags) */
SEC("raw_tracepoint/sock_send_length")
int netmon_send(struct bpf_raw_tracepoint_args *ctx)
{
	return count((struct sock *)ctx->args[0], (int)ctx->args[1], DIR_OUT);
}

/* sock_recv_length(struct sock *sk, int ret, int flags) */
SEC("raw_tracepoint/sock_recv_length")
int netmon_recv(struct bpf_raw_tracepoint_args *ctx)
{
	/* A peek leaves the bytes queued: the read that takes them is counted instead. */
	if ((int)ctx->args[2] & MSG_PEEK)
		return 0;
	return count((struct sock *)ctx->args[0], (int)ctx->args[1], DIR_IN);
}

/* sched_process_exit(struct task_struct *p[, bool group_dead]): fires for every thread. */
SEC("raw_tracepoint/sched_process_exit")
int netmon_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct task_struct *leader = 0;
	struct signal_struct *signal = 0;
	struct proc_key key = {};
	struct proc_val *v;
	int live = 1;

	/* do_exit() decrements signal->live before this tracepoint: 0 means the last thread of
	 * the process is exiting, and no call of it can move another byte. */
	CORE_READ(&signal, &task->signal);
	if (!signal)
		return 0;
	CORE_READ(&live, &signal->live.counter);
	if (live != 0)
		return 0;
	CORE_READ(&key.tgid, &task->tgid);
	CORE_READ(&leader, &task->group_leader);
	CORE_READ(&key.start_ns, &leader->start_boottime);
	v = bpf_map_lookup_elem(&procs, &key);
	if (!v)
		return 0;
	bpf_probe_read_kernel_str(v->comm, sizeof(v->comm),
				  __builtin_preserve_access_index(&leader->comm));
	v->exited = 1;
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
