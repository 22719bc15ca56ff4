#!/usr/bin/env python3
"""Known traffic for netmon's namespace tests: a server, and client workloads that each run
under their own process name and print what they moved.

    traffic.py server PORT [NAME]               TCP on PORT..PORT+9 (IPv4 and IPv6), UDP on PORT;
                                                runs as NAME (default nm_server)
    traffic.py bulk NAME HOST PORT UP DOWN [BIND_PORT]
    traffic.py short NAME HOST PORT COUNT UP DOWN
    traffic.py udp NAME HOST PORT COUNT SIZE
    traffic.py idle NAME HOST PORT SECONDS
    traffic.py fork NAME CHILD_NAME CHILDREN HOST PORT UP DOWN
    traffic.py shared NAME CHILD_NAME HOST PORT UP DOWN
    traffic.py loopback NAME UP DOWN
    traffic.py splice NAME HOST PORT UP DOWN     like bulk, but receives with splice() into a pipe
    traffic.py packet NAME IFACE COUNT SIZE      AF_PACKET: COUNT whole frames of SIZE bytes
    traffic.py sniff NAME IFACE STOP_FILE        AF_PACKET: every frame on IFACE (tcpdump's way)
                                                 until STOP_FILE exists (at most 60 s); creates
                                                 STOP_FILE.ready once it captures

TCP: the client sends a 16-byte header (UP, DOWN as big-endian u64), then UP bytes; the server
reads them, sends DOWN bytes and closes. UDP: the server answers every datagram with 8 bytes.
Every client process (forked children included) prints one JSON line when done:
{"name", "pid", "sent", "recv"}: the payload bytes its own send and receive calls moved. Every
socket wait is bounded by a timeout, so nothing hangs.
"""
import ctypes
import json
import os
import select
import socket
import struct
import sys
import threading
import time

TIMEOUT = 20.0
CHUNK = 65536


def set_name(name):
    """Give this process its own name (Linux comm), as a real program would have."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def report(name, sent, recv):
    line = json.dumps({"name": name, "pid": os.getpid(), "sent": sent, "recv": recv}) + "\n"
    os.write(1, line.encode())


def recv_exactly(sock, n):
    got = 0
    while got < n:
        b = sock.recv(min(CHUNK, n - got))
        if not b:
            break
        got += len(b)
    return got


def send_n(sock, n):
    block = b"x" * CHUNK
    sent = 0
    while sent < n:
        sent += sock.send(block[: min(CHUNK, n - sent)])
    return sent


def transfer(sock, up, down):
    """One exchange; returns (sent, received) payload bytes."""
    sock.sendall(struct.pack("!QQ", up, down))
    sent = 16 + send_n(sock, up)
    recv = 0
    while True:
        b = sock.recv(CHUNK)
        if not b:
            break
        recv += len(b)
    return sent, recv


def connect(host, port, bind_port=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    if bind_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", bind_port))
    s.connect((host, port))
    return s


# ---- server ----------------------------------------------------------------------------------

def serve_tcp_conn(conn):
    with conn:
        conn.settimeout(TIMEOUT)
        hdr = b""
        while len(hdr) < 16:
            b = conn.recv(16 - len(hdr))
            if not b:
                return
            hdr += b
        up, down = struct.unpack("!QQ", hdr)
        recv_exactly(conn, up)
        send_n(conn, down)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(CHUNK):
            pass


def serve_tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(256)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()


def serve_udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    while True:
        _, addr = s.recvfrom(CHUNK)
        s.sendto(b"r" * 8, addr)


def server(port, name="nm_server", max_seconds=600):
    set_name(name)
    for p in range(port, port + 10):
        threading.Thread(target=serve_tcp, args=(p,), daemon=True).start()
    threading.Thread(target=serve_udp, args=(port,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(max_seconds)


# ---- workloads -------------------------------------------------------------------------------

def bulk(name, host, port, up, down, bind_port=None):
    set_name(name)
    with connect(host, int(port), int(bind_port) if bind_port else None) as s:
        sent, recv = transfer(s, int(up), int(down))
    report(name, sent, recv)


def short(name, host, port, count, up, down):
    set_name(name)
    sent = recv = 0
    for _ in range(int(count)):
        with connect(host, int(port)) as s:
            a, b = transfer(s, int(up), int(down))
        sent += a
        recv += b
    report(name, sent, recv)


def udp(name, host, port, count, size):
    set_name(name)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    payload = b"u" * int(size)
    sent = recv = 0
    for i in range(int(count)):
        sent += s.sendto(payload, (host, int(port)))
        if i % 50 == 49:
            time.sleep(0.001)  # let the replies be read; loss would only lower both sides' truth
    s.settimeout(0.5)
    try:
        while True:
            recv += len(s.recv(CHUNK))
    except socket.timeout:
        pass
    report(name, sent, recv)


def idle(name, host, port, seconds):
    set_name(name)
    with connect(host, int(port)):
        time.sleep(float(seconds))
    report(name, 0, 0)


def fork(name, child_name, children, host, port, up, down):
    set_name(name)
    pids = []
    for _ in range(int(children)):
        pid = os.fork()
        if pid == 0:
            try:
                bulk(child_name, host, port, up, down)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    report(name, 0, 0)


def shared(name, child_name, host, port, up, down):
    """The parent opens the connection; a forked child moves every byte over it."""
    set_name(name)
    s = connect(host, int(port))
    pid = os.fork()
    if pid == 0:
        try:
            set_name(child_name)
            sent, recv = transfer(s, int(up), int(down))
            report(child_name, sent, recv)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    s.close()
    report(name, 0, 0)


def loopback(name, up, down):
    """Both ends in this process, over 127.0.0.1: traffic that never leaves the machine."""
    set_name(name)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    t = threading.Thread(target=lambda: serve_tcp_conn(srv.accept()[0]), daemon=True)
    t.start()
    with connect("127.0.0.1", srv.getsockname()[1]) as s:
        sent, recv = transfer(s, int(up), int(down))
    t.join(TIMEOUT)
    # The server half moved the mirror image in the same process.
    report(name, sent + recv, recv + sent)


def splice(name, host, port, up, down):
    """A download read with splice(2) from the socket into a pipe: the bytes never pass
    through a recv call."""
    set_name(name)
    with connect(host, int(port)) as s:
        s.sendall(struct.pack("!QQ", int(up), int(down)))
        sent = 16 + send_n(s, int(up))
        r, w = os.pipe()
        recv = 0
        try:
            while True:
                if not select.select([s], [], [], TIMEOUT)[0]:
                    raise TimeoutError("splice: no data within the timeout")
                try:
                    n = os.splice(s.fileno(), w, CHUNK, flags=os.SPLICE_F_NONBLOCK)
                except BlockingIOError:
                    continue
                if n == 0:
                    break
                recv += n
                left = n
                while left:
                    left -= len(os.read(r, left))
        finally:
            os.close(r)
            os.close(w)
    report(name, sent, recv)


ETH_P_ALL = 0x0003
# IEEE 802 local experimental ethertype: no stack on the other side takes these frames.
ETH_P_EXPERIMENTAL = 0x88B5


def packet(name, iface, count, size):
    """Whole Ethernet frames written to a packet socket (what DHCP clients and packet
    generators do)."""
    set_name(name)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_EXPERIMENTAL))
    s.bind((iface, ETH_P_EXPERIMENTAL))
    src = s.getsockname()[4]
    frame = b"\xff" * 6 + src + struct.pack("!H", ETH_P_EXPERIMENTAL)
    frame += b"p" * (int(size) - len(frame))
    sent = 0
    for i in range(int(count)):
        sent += s.send(frame)
        if i % 100 == 99:
            time.sleep(0.001)
    s.close()
    report(name, sent, 0)


def sniff(name, iface, stop_file):
    """Receive a copy of every frame on IFACE, as tcpdump does. Its report says it moved
    nothing (the frames belong to other sockets), and "captured": the frame bytes it read, so
    a test can tell that it really received during the transfers."""
    set_name(name)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    try:  # a roomy buffer, so frames are not dropped while a loaded machine runs Python slowly
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        pass
    s.settimeout(0.2)
    open(stop_file + ".ready", "w").close()
    seen = 0
    deadline = time.monotonic() + 60
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        try:
            seen += len(s.recv(CHUNK))
        except socket.timeout:
            pass
    line = json.dumps({"name": name, "pid": os.getpid(), "sent": 0, "recv": 0, "captured": seen})
    os.write(1, (line + "\n").encode())


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    funcs = {"server": server, "bulk": bulk, "short": short, "udp": udp, "idle": idle,
             "fork": fork, "shared": shared, "loopback": loopback, "splice": splice,
             "packet": packet, "sniff": sniff}
    if cmd == "server":
        server(int(args[0]), *args[1:2])
    else:
        funcs[cmd](*args)


if __name__ == "__main__":
    main()
