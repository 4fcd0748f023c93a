#!/usr/bin/env python3
"""test_badinput.py — a node under hostile TCP input stays up and correct.

Starts a 3-node ring on 127.0.2.1..3, then opens raw TCP connections to the
middle node and sends what no peer should: random garbage, a frame with a
wrong magic, one with a wrong version, a header announcing more than 1 MiB,
a truncated frame followed by end-of-stream, a PEER_FIND (1051) with a
garbage payload, HELLOs that are malformed, name port 0 or name another IP
than the connection's, slowloris headers (one byte a second, as the first
frame and after a whole first frame) and a connection that never sends
anything; also a frame of an unknown type, which protocol.md says is only
dropped.

For each it checks what docs/protocol.md ("Closing rules") promises: the
node closes the stream (EOF or reset within a bound: a frame gets 5 s from
its first byte, a new stream 5 s for its first frame), or keeps it for the
unknown type; it logs one line naming the connection and the reason
("closing connection from ADDR: REASON"); its bad-frame counter moves; it
never exits; and the ring answers lookups correctly from every node while
the slow connections are held open and afterwards.

Each attack connects from its own source address (127.0.2.101, .102, ...),
so its log line is found by source address and port.
"""

import os
import select
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
import ringlib as rl  # noqa: E402

LOOKUPS = 1000
FRAME_TIMEOUT = 5.0  # the node's bound on a frame and on a first frame
KEEP_WATCH = 1.5  # how long a stream that must stay open is watched
HELLO = 1050


def connect(target, src_ip):
    host, port = rl.parse_addr(target)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src_ip, 0))
    s.settimeout(rl.scaled(5))
    s.connect((host, port))
    return s


def wait_closed(s, timeout):
    """Reads until EOF or reset. Returns (how, seconds, bytes read) with how
    in 'EOF', 'ECONNRESET', or None if still open at the timeout."""
    start = time.monotonic()
    got = 0
    end = start + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None, time.monotonic() - start, got
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return "ECONNRESET", time.monotonic() - start, got
        if not b:
            return "EOF", time.monotonic() - start, got
        got += len(b)


class Attack:
    """One hostile connection: what it sends, from which source address, and
    what the node must do (close it or keep it) and log (words that must all
    be in the line naming our source address and port)."""

    def __init__(self, name, src_ip, log_words, close=True):
        self.name = name
        self.src = src_ip
        self.log_words = log_words
        self.close = close
        self.how = None
        self.secs = None
        self.bytes_back = 0
        self.sent = 0
        self.error = None
        self.src_port = None


def send_then_wait(target, a, data, bound, shut_wr=False):
    try:
        s = connect(target, a.src)
    except OSError as e:
        raise rl.Failure(f"{a.name}: cannot connect to {target}: {e}")
    a.src_port = s.getsockname()[1]
    try:
        try:
            s.sendall(data)
            a.sent = len(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            # the node may close before it has read everything we send
            rl.say(f"   {a.name}: send stopped by {e.__class__.__name__} (node closed early)")
        if shut_wr:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        a.how, a.secs, a.bytes_back = wait_closed(s, bound)
    finally:
        s.close()


def dribble(target, a, data, bound, first=b""):
    """Sends `first` at once, then data one byte a second, until the node
    closes or bound passes. Runs in a thread: errors go to a.error."""
    try:
        s = connect(target, a.src)
        s.sendall(first)
    except OSError as e:
        a.error = f"connect: {e}"
        return
    a.src_port = s.getsockname()[1]
    start = time.monotonic()
    try:
        i = 0
        while time.monotonic() - start < bound:
            r, _, _ = select.select([s], [], [], 1.0)
            if r:
                try:
                    b = s.recv(65536)
                except ConnectionResetError:
                    a.how = "ECONNRESET"
                    break
                if not b:
                    a.how = "EOF"
                    break
                a.bytes_back += len(b)
                continue
            if data and i < len(data):
                try:
                    s.send(data[i:i + 1])
                    i += 1
                except (BrokenPipeError, ConnectionResetError) as e:
                    a.how = "ECONNRESET" if isinstance(e, ConnectionResetError) else "EPIPE"
                    break
        a.sent = i
        a.secs = time.monotonic() - start
    except Exception as e:  # reported by the main thread
        a.error = repr(e)
    finally:
        s.close()


def hello(host, port):
    """A HELLO frame (type 1050) naming host:port (IPv4)."""
    return rl.frame(HELLO, bytes([4]) + port.to_bytes(2, "big") + socket.inet_aton(host),
                    req_id=0)


def counters(node):
    st = node.status()
    peers = st.get("peers", {})
    return {"bad_frames": st.get("stats", {}).get("bad_frames"),
            "closed_bad": peers.get("closed_bad"), "closed_slow": peers.get("closed_slow")}


def main():
    rl.check_binary()
    rng = rl.make_rng()
    c = rl.Cluster("badinput")

    rl.section("a 3-node ring on 127.0.2.1..3")
    a = c.add("127.0.2.1")
    c.wait_joined([a])
    b = c.add("127.0.2.2", vnodes=2, join=[a])
    c.wait_joined([b])
    d = c.add("127.0.2.3", join=[b])
    c.wait_joined([d])
    c.describe(c.nodes)
    c.wait_stable(c.nodes, "3-node ring stable")
    c.check_lookups(c.nodes, c.nodes, rng, LOOKUPS, "lookups before the attacks")
    target = b.addr
    before = counters(b)
    rl.say(f"target {b.name} {target}; its counters: {before}")

    rl.section("hostile connections to " + target)
    bound = rl.scaled(FRAME_TIMEOUT) + 5  # how long a close may take
    slow_bound = rl.scaled(FRAME_TIMEOUT) * 2 + 10  # how long we watch a slow one
    attacks = []

    def mk(name, src_last, log_words, close=True):
        at = Attack(name, f"127.0.2.{src_last}", log_words, close)
        attacks.append(at)
        return at

    # The slow ones run in threads while the others go one by one: a first
    # frame that never completes, no first frame at all, and a later frame
    # that never completes (after a whole frame the node accepts and drops).
    slowloris = mk("slowloris: a PING header, one byte a second", 120,
                   ["closing connection", "no complete frame"])
    idle = mk("idle: connects and sends nothing", 121,
              ["closing connection", "no complete frame"])
    later = mk("slowloris after one whole frame (unknown type 999)", 122,
               ["closing connection", "no complete frame"])
    slow = [slowloris, idle, later]
    threads = [
        threading.Thread(target=dribble, daemon=True,
                         args=(target, slowloris, rl.frame(1056, length=0), slow_bound)),
        threading.Thread(target=dribble, daemon=True, args=(target, idle, b"", slow_bound)),
        threading.Thread(target=dribble, daemon=True,
                         args=(target, later, rl.frame(1056, length=0), slow_bound,
                               rl.frame(999, b"x"))),
    ]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    rl.say("started: " + "; ".join(f"{at.name} (from {at.src})" for at in slow))

    closing = "closing connection"
    fast = [
        (mk("random garbage (4 KiB)", 101, [closing, "magic"]),
         bytes([0x00]) + os.urandom(4095), False),
        (mk("wrong magic", 102, [closing, "magic"]), rl.frame(1056, magic=0x504F4F43), False),
        (mk("wrong version (2)", 103, [closing, "version"]), rl.frame(1056, version=2), False),
        (mk("length 1 MiB + 1", 104, [closing, "above the maximum"]),
         rl.frame(1056, length=rl.FRAME_MAX_PAYLOAD + 1) + os.urandom(1000), False),
        (mk("truncated frame (header says 100 bytes, 40 sent), then end of stream", 105,
            [closing, "middle of a frame"]), rl.frame(1056, os.urandom(40), length=100), True),
        (mk("PEER_FIND (1051) with a garbage payload", 106, [closing, "malformed"]),
         rl.frame(1051, os.urandom(97)), False),
        (mk("HELLO naming another IP (127.0.2.1)", 107, [closing, "another ip"]),
         hello("127.0.2.1", a.port), False),
        (mk("HELLO with a garbage payload", 108, [closing, "malformed hello"]),
         rl.frame(HELLO, os.urandom(5), req_id=0), False),
        (mk("HELLO naming port 0", 109, [closing, "malformed hello"]),
         hello("127.0.2.109", 0), False),
        # protocol.md: "an unknown type is only dropped (a newer peer)"
        (mk("unknown type 999 (dropped, stream kept)", 110, ["dropped", "unknown type"],
            close=False), rl.frame(999, os.urandom(50)), False),
    ]
    for at, data, shut in fast:
        send_then_wait(target, at, data, bound if at.close else KEEP_WATCH, shut_wr=shut)
        got = at.how or f"still open"
        rl.say(f"   {at.name}: {got} after {at.secs:.2f} s"
               + (f" ({at.bytes_back} bytes came back)" if at.bytes_back else ""))

    # While the slow connections are still open: the ring must still work.
    rl.section("lookups while the slow connections are open")
    still = sum(t.is_alive() for t in threads)
    rl.say(f"{still} slow connection(s) still being held open")
    c.check_lookups(c.nodes, c.nodes, rng, LOOKUPS, "lookups during the attacks")

    for t in threads:
        t.join(slow_bound + 5)
    for at in slow:
        if at.error:
            raise rl.Failure(f"{at.name}: {at.error}")
        rl.say(f"   {at.name}: {at.how or 'STILL OPEN'} after {at.secs:.2f} s "
               f"({at.sent} bytes sent)")
    rl.say(f"all hostile connections done after {time.monotonic() - t_start:.1f} s")

    rl.section("results")
    for n in c.nodes:
        rl.check(n.alive(), f"{n.name} is still running",
                 f"{n.name} exited with {n.returncode()}; log:\n{n.log_tail(20)}")
    to_close = [at for at in attacks if at.close]
    still_open = [at for at in to_close if at.how is None]
    rl.check(not still_open, f"the node closed all {len(to_close)} connections it must close "
             f"(EOF or reset, each within {bound:.0f} s)",
             "the node left these connections open: "
             + "; ".join(f"{at.name} (watched {at.secs:.1f} s)" for at in still_open))
    late = [at for at in slow if at.secs > bound]
    rl.check(not late, "the slow ones were closed after "
             + ", ".join(f"{at.secs:.1f} s" for at in slow)
             + f" (the node's bound: {FRAME_TIMEOUT:g} s)",
             "closed only after "
             + "; ".join(f"{at.name}: {at.secs:.1f} s" for at in late)
             + f" (the node's bound is {FRAME_TIMEOUT:g} s, allowed {bound:.0f} s)")
    for at in (slowloris, later):
        rl.check(at.sent < rl.FRAME_HEADER.size,
                 f"{at.name}: {at.sent} of {rl.FRAME_HEADER.size} header bytes got in",
                 f"{at.name}: the node let all {at.sent} header bytes in over "
                 f"{at.secs:.1f} s before closing")
    kept = [at for at in attacks if not at.close]
    rl.check(all(at.how is None for at in kept),
             "the unknown-type stream was kept open (protocol.md: only dropped)",
             "closed although protocol.md says an unknown type is only dropped: "
             + "; ".join(f"{at.name}: {at.how} after {at.secs:.2f} s" for at in kept
                         if at.how))

    # Log lines: one per attack, recognised by its source address and port,
    # with its reason; print the ones matched.
    lines = b.log_text().splitlines()
    problems = []
    rl.say(f"{b.name}'s log, the line of each hostile connection:")
    for at in attacks:
        tag = f"{at.src}:{at.src_port}"
        mine = [x.strip() for x in lines if tag in x and at.log_words[0] in x]
        if not mine:
            problems.append(f"{at.name}: no line with '{at.log_words[0]}' naming {tag}")
            continue
        rl.say(f"   {at.name}:\n       {mine[0]}")
        lacking = [w for w in at.log_words if w not in mine[0].lower()]
        if lacking:
            problems.append(f"{at.name}: the line lacks {lacking}: {mine[0]}")
        if len(mine) > 1:
            problems.append(f"{at.name}: {len(mine)} such lines for one connection: {mine}")
    if problems:
        shown = [x for x in lines if "127.0.2.1" in x and ("closing" in x or "dropped" in x)]
        raise rl.Failure("log lines:\n    " + "\n    ".join(problems)
                         + "\n    lines seen:\n    " + "\n    ".join(shown[:30]))
    rl.say(f"ok: each of the {len(attacks)} hostile connections has its own log line with "
           "its reason")

    after = counters(b)
    rl.say(f"counters after: {after}")
    rl.check(isinstance(after["bad_frames"], int)
             and (before["bad_frames"] or 0) < after["bad_frames"],
             f"stats.bad_frames went from {before['bad_frames']} to {after['bad_frames']}",
             f"stats.bad_frames did not grow ({before['bad_frames']} -> {after['bad_frames']})")

    want = {"closed_bad": sum(1 for at in attacks if at.close and at not in slow
                              and "middle of a frame" not in at.log_words),
            "closed_slow": len(slow)}
    for k, n in want.items():
        if before[k] is None or after[k] is None:
            rl.say(f"(status has no peers.{k}; not checked)")
            continue
        rl.check(after[k] - before[k] >= n, f"peers.{k} grew by {after[k] - before[k]} "
                 f"(at least {n} expected)", f"peers.{k} grew by {after[k] - before[k]}, "
                 f"expected at least {n}")

    rl.section("after the attacks")
    c.wait_stable(c.nodes, "3-node ring still stable")
    c.check_lookups(c.nodes, c.nodes, rng, LOOKUPS, "lookups after the attacks")
    for n in c.nodes:
        rl.check(n.alive(), f"{n.name} still running", f"{n.name} exited with {n.returncode()}")


if __name__ == "__main__":
    rl.run(main)
