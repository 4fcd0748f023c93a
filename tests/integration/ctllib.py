"""ctllib.py — a raw client of a node's control socket for the integration
tests (docs/protocol.md, "Control protocol"): the frame exchange, the
block reply's decoding, and the block store's error names. Python 3
standard library only; frames are made by ringlib.
"""

import os
import socket
import struct

import ringlib as rl

CTL_BLOCK_PUT = 1210
CTL_BLOCK_GET = 1211
CTL_ROOT_PUT = 1212
CTL_ERROR = 1299
FRAME_F_REPLY = 1
STORE_CONTENT, STORE_ROOT = 1, 2
BS_ERR = {-6001: "MALFORMED", -6002: "FULL", -6003: "QUOTA", -6004: "BAD_BLOCK",
          -6005: "CONFLICT", -6006: "STALE", -6007: "INDETERMINATE", -6008: "WRONG_NODE",
          -6009: "NO_LEASE", -6010: "NOT_FOUND", -6011: "LEAVING", -6012: "STORE"}
BS_ERR_BAD_BLOCK, BS_ERR_CONFLICT = -6004, -6005


class Ctl:
    """A raw connection to a node's control socket (docs/protocol.md)."""

    def __init__(self, node, timeout):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(os.path.join(node.dir, "control.sock"))
        self.next_id = 1

    def close(self):
        self.s.close()

    def _read(self, n):
        b = b""
        while len(b) < n:
            x = self.s.recv(n - len(b))
            if not x:
                raise rl.Failure("the node closed the control connection")
            b += x
        return b

    def call(self, type_, payload):
        """Sends one request, returns (reply type, payload)."""
        rid = self.next_id
        self.next_id += 1
        self.s.sendall(rl.frame(type_, payload, req_id=rid))
        while True:
            magic, ver, flags, t, got_id, length = rl.FRAME_HEADER.unpack(self._read(20))
            if magic != rl.FRAME_MAGIC or ver != rl.FRAME_VERSION:
                raise rl.Failure(f"control reply with magic {magic:#x} version {ver}")
            body = self._read(length)
            if got_id == rid and flags & FRAME_F_REPLY:
                return t, body


def bs_reply(t, body, what, error_ok=False):
    """Decodes a block reply: {status, key, copies, version, reason, bytes}.
    With error_ok, an ERROR reply (a request refused before it started, as
    protocol.md allows for any request) gives {status, reason, "error": True}."""
    if t == CTL_ERROR:
        err = struct.unpack(">i", body[:4])[0]
        msg = body[4:].decode("utf-8", "replace")
        if error_ok:
            return {"status": err, "reason": msg, "error": True, "bytes": b"", "version": 0}
        raise rl.Failure(f"{what}: the node answered ERROR {err}: {msg}")
    try:
        status, key, ncopies, version, rlen = struct.unpack(">i32sBQH", body[:47])
        reason = body[47:47 + rlen].decode("utf-8", "replace")
        (blen,) = struct.unpack(">I", body[47 + rlen:51 + rlen])
        data = body[51 + rlen:51 + rlen + blen]
        if len(data) != blen or len(body) != 51 + rlen + blen:
            raise ValueError("length")
    except (struct.error, ValueError) as e:
        raise rl.Failure(f"{what}: block reply does not decode ({e}): {body[:80].hex()}")
    return {"status": status, "key": key.hex(), "copies": ncopies, "version": version,
            "reason": reason, "bytes": data}


def err_name(status):
    return BS_ERR.get(status, str(status))
