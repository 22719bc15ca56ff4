/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * netmon's kernel programs: per-process payload byte counters, in every network namespace.
 *
 * Sends: the socket layer's tracepoint sock:sock_send_length (Linux 6.3+) fires in
 * sock_sendmsg, in the calling task, with the byte count the call returned: every send,
 * sendto, sendmsg, sendmmsg, write, and sendfile/splice into a socket, of every family. Inet
 * sockets (IPv4, IPv6) and packet sockets (AF_PACKET: whole frames a program writes) count.
 *
 * Receives: sock:sock_recv_length fires in sock_recvmsg (recv, recvfrom, recvmsg, recvmmsg,
 * read) and counts every inet socket but TCP. TCP data can also leave the receive queue
 * without sock_recvmsg: splice() from a socket and sendfile-style readers go through
 * tcp_read_sock(), TCP_ZEROCOPY_RECEIVE maps pages, and all of them (recvmsg too, once per
 * chunk copied) call tcp_rcv_space_adjust() right after advancing tp->copied_seq. So TCP
 * receives are counted once, as the advance of copied_seq each time tcp:tcp_rcv_space_adjust
 * fires, from where the socket was when it became ESTABLISHED (sock:inet_sock_set_state);
 * sockets that were established before the programs were loaded are based at their first
 * sighting, and the first recvmsg after that fills in the chunk that sighting skipped. A
 * FIN's sequence number is not a byte: it is taken out once. A socket under an upper-layer
 * protocol (kTLS, an MPTCP subflow) is counted at its receive call instead. Packet sockets' receives are
 * never counted (they are copies of traffic other sockets moved: tcpdump would double every
 * byte), nor are raw IP sockets' receives of TCP and UDP (copies too).
 *
 * Each call's bytes go to the calling process's entry in `traffic`, keyed by (tgid, start
 * time of the thread-group leader, network namespace of the socket), so a reused pid is a new
 * entry and a process with sockets in two namespaces has two. The bytes land on whoever made
 * the call: a forked child, or a child using a socket its parent opened, is credited itself.
 * Each entry splits bytes by protocol (TCP, UDP, other) and by whether the peer is on this
 * machine: a loopback route or address, or an address in `local_v4`/`local_v6`, which user
 * space keeps filled with this machine's own addresses and the subnets behind its links to
 * containers. Whether the namespace itself is part of this machine is user space's call.
 *
 * They are attached as raw tracepoints (by name: no tracefs, no kprobes, no fentry, all of which
 * a locked-down kernel may refuse) and read kernel structs through CO-RE relocations, so one
 * object runs on any kernel with BTF.
 *
 * sched:sched_process_exit marks a process's `procs` entry once its last thread has exited:
 * user space then reads its final values once and deletes its entries.
 */
#include "bpf_defs.h"

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262
#define SOCK_RAW 3
#define MSG_PEEK 2
#define IFF_LOOPBACK 0x8
#define TCP_ESTABLISHED 1
#define TCP_CLOSE 7
/* enum sock_flags: SOCK_DEAD, SOCK_DONE (a FIN was received), ... */
#define SOCK_DONE 1
/* task->flags: a kernel thread. */
#define PF_KTHREAD 0x00200000

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
	/* Linux 6.10+ keeps the socket flags here (sk_flags is a macro for it). */
	unsigned long skc_flags;
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
	__u16 sk_type;
	__u16 sk_protocol;
	unsigned long sk_flags;
	struct dst_entry *sk_dst_cache;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u32 rcv_nxt;
	__u32 copied_seq;
} __attribute__((preserve_access_index));

struct inet_connection_sock {
	/* Set for a socket with an upper-layer protocol on top (kTLS, an MPTCP subflow). */
	const void *icsk_ulp_ops;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	int tgid;
	__u64 start_boottime;
	struct task_struct *group_leader;
	char comm[16];
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

/* --- what user space reads (mirrored by `ProcKey`, `ProcInfo`, `TrafficKey` and `Traffic`
 * in track.rs) --- */

/* Counter classes: protocol (tcp, udp, other) x (peer beyond this machine, peer on it). */
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

struct proc_info {
	/* The thread-group leader's comm when the entry was made, and again at exit. */
	char comm[16];
	__u32 uid;
	/* Set once the last thread has exited: no call of this process can move another byte. */
	__u32 exited;
	/* The cgroup (v2) the process was in when the entry was made: names its container. */
	__u64 cgroup_id;
};

struct traffic_key {
	__u32 tgid;
	/* Inode of the socket's network namespace (/proc/<pid>/ns/net). */
	__u32 netns;
	__u64 start_ns;
};

struct traffic {
	/* bytes[class][dir], class = proto * 2 + local; cumulative since the entry was made. */
	__u64 bytes[CLASSES][2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct proc_key);
	__type(value, struct proc_info);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct traffic_key);
	__type(value, struct traffic);
} traffic SEC(".maps");

/* Bytes of processes that found no room in `traffic`: counted, never dropped. Entry 1 holds
 * TCP data read by kernel threads (kTLS, sockmap) on no process's behalf that can be named. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct traffic);
} overflow SEC(".maps");
#define OVERFLOW_FULL 0
#define OVERFLOW_KERNEL 1

/* This machine's addresses and the subnets of its links to containers (user space). */
struct lpm4 {
	__u32 prefixlen;
	__u32 addr;
};
struct lpm6 {
	__u32 prefixlen;
	__u32 addr[4];
};
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm4);
	__type(value, __u8);
} local_v4 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6);
	__type(value, __u8);
} local_v6 SEC(".maps");

/* Per TCP socket: the copied_seq up to which its receives are counted. */
struct tcp_rx {
	__u32 seen;
	/* copied_seq when first sighted, for a socket established before the programs ran. */
	__u32 base;
	__u32 flags;
	__u32 pad;
};
#define RX_UNBASED 1
#define RX_FIN_TAKEN 2
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, struct tcp_rx);
} tcp_rx SEC(".maps");

/* config[0] != 0: TCP receives are counted from copied_seq (set by user space once the
 * tcp_rcv_space_adjust and inet_sock_set_state programs are attached); 0: from
 * sock_recv_length, as on a kernel without those tracepoints. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

static __always_inline int tcp_rx_by_seq(void)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&config, &zero);
	return v && *v;
}

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

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define V6_ONE 0x01000000
#define V6_MAPPED 0xffff0000
#else
#define V6_ONE 1
#define V6_MAPPED 0x0000ffff
#endif

static __always_inline int is_zero6(const struct addr6 *a)
{
	return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]);
}

static __always_inline int is_mapped6(const struct addr6 *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == V6_MAPPED;
}

static __always_inline int local4(__u32 addr_be)
{
	struct lpm4 k = {.prefixlen = 32, .addr = addr_be};
	if (is_loopback4(addr_be))
		return 1;
	return bpf_map_lookup_elem(&local_v4, &k) != 0;
}

static __always_inline int local6(const struct addr6 *a)
{
	if (is_mapped6(a))
		return local4(a->w[3]);
	if (a->w[0] == 0 && a->w[1] == 0 && a->w[2] == 0 && a->w[3] == V6_ONE)
		return 1; /* ::1 */
	struct lpm6 k = {.prefixlen = 128};
	k.addr[0] = a->w[0];
	k.addr[1] = a->w[1];
	k.addr[2] = a->w[2];
	k.addr[3] = a->w[3];
	return bpf_map_lookup_elem(&local_v6, &k) != 0;
}

/*
 * Does this socket's traffic stay on this machine? The cached route says so for connected
 * sockets that go over `lo` (which catches connections to one of this machine's own
 * addresses); otherwise the peer's address decides (loopback, this machine's, or behind one
 * of its links to containers); with no peer yet, a socket bound to a loopback address.
 */
static __always_inline int is_local(struct sock *sk, __u16 family)
{
	struct dst_entry *dst = 0;
	CORE_READ(&dst, &sk->sk_dst_cache);
	if (dst) {
		struct net_device *dev = 0;
		CORE_READ(&dev, &dst->dev);
		if (dev) {
			unsigned int flags = 0;
			CORE_READ(&flags, &dev->flags);
			if (flags & IFF_LOOPBACK)
				return 1;
		}
	}
	if (family == AF_INET) {
		__u32 daddr = 0, saddr = 0;
		CORE_READ(&daddr, &sk->__sk_common.skc_daddr);
		if (daddr)
			return local4(daddr);
		CORE_READ(&saddr, &sk->__sk_common.skc_rcv_saddr);
		return is_loopback4(saddr);
	}
	struct addr6 daddr = {}, saddr = {};
	CORE_READ(&daddr, &sk->__sk_common.skc_v6_daddr);
	if (!is_zero6(&daddr))
		return local6(&daddr);
	CORE_READ(&saddr, &sk->__sk_common.skc_v6_rcv_saddr);
	if (is_mapped6(&saddr))
		return is_loopback4(saddr.w[3]);
	return saddr.w[0] == 0 && saddr.w[1] == 0 && saddr.w[2] == 0 && saddr.w[3] == V6_ONE;
}

static __always_inline __u32 netns_of(struct sock *sk)
{
	struct net *net = 0;
	unsigned int inum = 0;
	CORE_READ(&net, &sk->__sk_common.skc_net.net);
	if (!net)
		return 0;
	CORE_READ(&inum, &net->ns.inum);
	return inum;
}

/* The current process's traffic entry for namespace `netns`, made (with its `procs` entry)
 * on first use; the overflow entry when the table is full. */
static __always_inline struct traffic *entry_for_current(__u32 netns)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = 0;
	struct traffic_key key = {};
	struct traffic *v;

	CORE_READ(&leader, &task->group_leader);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.netns = netns;
	CORE_READ(&key.start_ns, &leader->start_boottime);
	v = bpf_map_lookup_elem(&traffic, &key);
	if (v)
		return v;

	struct proc_key pk = {.tgid = key.tgid, .start_ns = key.start_ns};
	if (!bpf_map_lookup_elem(&procs, &pk)) {
		struct proc_info info = {};
		bpf_probe_read_kernel_str(info.comm, sizeof(info.comm),
					  __builtin_preserve_access_index(&leader->comm));
		info.uid = (__u32)bpf_get_current_uid_gid();
		info.cgroup_id = bpf_get_current_cgroup_id();
		/* Another thread may have made it meanwhile (EEXIST); the table may be full. */
		bpf_map_update_elem(&procs, &pk, &info, BPF_NOEXIST);
	}
	struct traffic init = {};
	bpf_map_update_elem(&traffic, &key, &init, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&traffic, &key);
	if (v)
		return v;
	__u32 slot = OVERFLOW_FULL;
	return bpf_map_lookup_elem(&overflow, &slot);
}

static __always_inline int proto_of(__u16 protocol)
{
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP)
		return PROTO_TCP;
	if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE)
		return PROTO_UDP;
	return PROTO_OTHER;
}

static __always_inline void add(__u32 netns, int class, int dir, __u64 bytes)
{
	struct traffic *v;
	if (class < 0 || class >= CLASSES)
		return;
	v = entry_for_current(netns);
	if (!v)
		return;
	__sync_fetch_and_add(&v->bytes[class][dir], bytes);
}

static __always_inline int count(struct sock *sk, long ret, int dir)
{
	unsigned short family = 0;
	__u16 protocol = 0;
	int proto;

	if (ret <= 0 || !sk)
		return 0;
	CORE_READ(&family, &sk->__sk_common.skc_family);
	if (family == AF_PACKET) {
		/* What a packet socket writes is a whole frame it built; what it reads is a copy. */
		if (dir == DIR_OUT)
			add(netns_of(sk), PROTO_OTHER * 2, DIR_OUT, (__u64)ret);
		return 0;
	}
	if (family != AF_INET && family != AF_INET6)
		return 0;
	CORE_READ(&protocol, &sk->sk_protocol);
	proto = proto_of(protocol);
	if (dir == DIR_IN) {
		__u16 type = 0;
		CORE_READ(&type, &sk->sk_type);
		/* A raw IP socket of TCP or UDP receives copies of packets TCP and UDP sockets
		 * take as well. */
		if (type == SOCK_RAW && proto != PROTO_OTHER)
			return 0;
	}
	add(netns_of(sk), proto * 2 + is_local(sk, family), dir, (__u64)ret);
	return 0;
}

/* sock_send_length(struct sock *sk, int ret, int flags) */
SEC("raw_tracepoint/sock_send_length")
int netmon_send(struct bpf_raw_tracepoint_args *ctx)
{
	return count((struct sock *)ctx->args[0], (int)ctx->args[1], DIR_OUT);
}

static __always_inline int is_tcp(struct sock *sk)
{
	unsigned short family = 0;
	__u16 protocol = 0, type = 0;
	CORE_READ(&family, &sk->__sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	CORE_READ(&protocol, &sk->sk_protocol);
	CORE_READ(&type, &sk->sk_type);
	return protocol == IPPROTO_TCP && type != SOCK_RAW;
}

/* A TCP socket whose receives are counted from copied_seq: not one under an upper-layer
 * protocol, whose own receive call says what the program got (kTLS: the plaintext), or
 * whose data the kernel moves on (an MPTCP subflow: the MPTCP socket's receives count). */
static __always_inline int tcp_by_seq(struct sock *sk)
{
	const void *ulp = 0;
	if (!tcp_rx_by_seq() || !is_tcp(sk))
		return 0;
	CORE_READ(&ulp, &((struct inet_connection_sock *)sk)->icsk_ulp_ops);
	return ulp == 0;
}

/* sock_recv_length(struct sock *sk, int ret, int flags) */
SEC("raw_tracepoint/sock_recv_length")
int netmon_recv(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	int ret = (int)ctx->args[1];

	/* A peek leaves the bytes queued: the read that takes them is counted instead. */
	if ((int)ctx->args[2] & MSG_PEEK)
		return 0;
	if (!sk || ret <= 0)
		return 0;
	if (tcp_by_seq(sk)) {
		/* Counted as copied_seq advanced; only a socket first sighted during this call
		 * still lacks the chunk read before the sighting. */
		__u64 skp = (__u64)sk;
		struct tcp_rx *rx = bpf_map_lookup_elem(&tcp_rx, &skp);
		if (rx && (rx->flags & RX_UNBASED)) {
			struct tcp_sock *tp = (struct tcp_sock *)sk;
			__u32 copied = 0;
			CORE_READ(&copied, &tp->copied_seq);
			__u32 since = copied - rx->base;
			rx->flags &= ~RX_UNBASED;
			if ((__u32)ret > since) {
				unsigned short family = 0;
				CORE_READ(&family, &sk->__sk_common.skc_family);
				add(netns_of(sk), PROTO_TCP * 2 + is_local(sk, family), DIR_IN,
				    (__u64)((__u32)ret - since));
			}
		}
		return 0;
	}
	return count(sk, ret, DIR_IN);
}

/* tcp_rcv_space_adjust(struct sock *sk): called right after copied_seq advanced, by recvmsg,
 * tcp_read_sock (splice) and the zero-copy receive. */
SEC("raw_tracepoint/tcp_rcv_space_adjust")
int netmon_tcp_rx(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 skp = (__u64)sk;
	__u32 copied = 0, rcv_nxt = 0;
	unsigned long sk_flags = 0;
	struct tcp_rx *rx;

	if (!sk || !tcp_by_seq(sk))
		return 0;
	CORE_READ(&copied, &tp->copied_seq);
	rx = bpf_map_lookup_elem(&tcp_rx, &skp);
	if (!rx) {
		/* Established before the programs were loaded: count from here on. */
		struct tcp_rx init = {.seen = copied, .base = copied, .flags = RX_UNBASED};
		bpf_map_update_elem(&tcp_rx, &skp, &init, BPF_NOEXIST);
		return 0;
	}
	__u32 delta = copied - rx->seen;
	if (delta == 0 || delta > 0x7fffffff)
		return 0;
	rx->seen = copied;
	if (__builtin_preserve_field_info(sk->__sk_common.skc_flags, BPF_FIELD_EXISTS))
		CORE_READ(&sk_flags, &sk->__sk_common.skc_flags);
	else
		CORE_READ(&sk_flags, &sk->sk_flags);
	if ((sk_flags & (1UL << SOCK_DONE)) && !(rx->flags & RX_FIN_TAKEN)) {
		CORE_READ(&rcv_nxt, &tp->rcv_nxt);
		if (copied == rcv_nxt) {
			/* The FIN, the last number of the sequence space, was consumed. */
			rx->flags |= RX_FIN_TAKEN;
			delta -= 1;
			if (delta == 0)
				return 0;
		}
	}
	unsigned short family = 0;
	CORE_READ(&family, &sk->__sk_common.skc_family);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned int task_flags = 0;
	CORE_READ(&task_flags, &task->flags);
	if (task_flags & PF_KTHREAD) {
		__u32 slot = OVERFLOW_KERNEL;
		struct traffic *k = bpf_map_lookup_elem(&overflow, &slot);
		if (k)
			__sync_fetch_and_add(&k->bytes[PROTO_TCP * 2 + is_local(sk, family)][DIR_IN],
					     (__u64)delta);
		return 0;
	}
	add(netns_of(sk), PROTO_TCP * 2 + is_local(sk, family), DIR_IN, (__u64)delta);
	return 0;
}

/* inet_sock_set_state(const struct sock *sk, const int oldstate, const int newstate) */
SEC("raw_tracepoint/inet_sock_set_state")
int netmon_tcp_state(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	int newstate = (int)ctx->args[2];
	__u64 skp = (__u64)sk;

	if (!sk || !is_tcp(sk))
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		/* copied_seq is set before the state changes, for both ends. */
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		struct tcp_rx init = {};
		CORE_READ(&init.seen, &tp->copied_seq);
		bpf_map_update_elem(&tcp_rx, &skp, &init, BPF_ANY);
	} else if (newstate == TCP_CLOSE) {
		bpf_map_delete_elem(&tcp_rx, &skp);
	}
	return 0;
}

/* sched_process_exit(struct task_struct *p[, bool group_dead]): fires for every thread. */
SEC("raw_tracepoint/sched_process_exit")
int netmon_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct task_struct *leader = 0;
	struct signal_struct *signal = 0;
	struct proc_key key = {};
	struct proc_info *v;
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
