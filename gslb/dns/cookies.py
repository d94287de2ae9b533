"""DNS cookies (RFC 7873) with the interoperable server cookie of RFC 9018.

A client sends an 8-byte client cookie, and once it has one, the server cookie it was
given. The server cookie is version 1, three reserved bytes, a 32-bit timestamp and
SipHash-2-4 (under a 16-byte secret) of client cookie | version | reserved | timestamp |
client address, so any node holding the same secret recognises any other node's
cookies. A server cookie verifies when one of the secrets made it and its timestamp is
no more than an hour old and no more than five minutes ahead (RFC 9018 section 4.3).

This server does not require cookies: a query whose server cookie does not verify
(forged, expired, made with a secret no longer held) is answered as usual with a fresh
server cookie (RFC 7873 sections 5.2.3 and 5.2.4); it only is not marked valid, which is
what rate limiting reads. A valid cookie made with the first (signing) secret is echoed
while it is younger than half an hour, else replaced by a fresh one (RFC 9018 section 4.3).
The native fast path (gslb/server/native/cookie.c) does the same, byte for byte.

No clock and no randomness here: the caller gives both (the core reads neither).
"""

from __future__ import annotations

import hmac
import struct
from typing import Callable, Sequence

CLIENT_COOKIE = 8
SERVER_COOKIE = 16  # RFC 9018: version, reserved (3), timestamp, hash (8)
MIN_SERVER_COOKIE, MAX_SERVER_COOKIE = 8, 32  # RFC 7873 section 4
SECRET_SIZE = 16
VERSION = 1
MAX_AGE = 3600  # RFC 9018 section 4.3: older server cookies are not valid
MAX_AHEAD = 300  # nor those more than five minutes in the future
REISSUE_AGE = 1800  # a valid cookie older than this is replaced by a fresh one

MASK64 = 0xFFFFFFFFFFFFFFFF
TIMESTAMP = struct.Struct("!I")


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & MASK64


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 (Aumasson and Bernstein) of `data` under a 16-byte key, as the
    reference implementation reads it: key and message words little-endian."""
    k0, k1 = struct.unpack("<QQ", key)
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    tail = len(data) & 7
    words = list(struct.unpack_from(f"<{len(data) >> 3}Q", data))
    words.append((len(data) & 0xFF) << 56 | int.from_bytes(data[len(data) - tail:], "little"))
    for index, m in enumerate(words):
        v3 ^= m
        for _ in range(2):
            v0 = (v0 + v1) & MASK64; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)  # noqa: E702
            v2 = (v2 + v3) & MASK64; v3 = _rotl(v3, 16) ^ v2  # noqa: E702
            v0 = (v0 + v3) & MASK64; v3 = _rotl(v3, 21) ^ v0  # noqa: E702
            v2 = (v2 + v1) & MASK64; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)  # noqa: E702
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        v0 = (v0 + v1) & MASK64; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)  # noqa: E702
        v2 = (v2 + v3) & MASK64; v3 = _rotl(v3, 16) ^ v2  # noqa: E702
        v0 = (v0 + v3) & MASK64; v3 = _rotl(v3, 21) ^ v0  # noqa: E702
        v2 = (v2 + v1) & MASK64; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)  # noqa: E702
    return v0 ^ v1 ^ v2 ^ v3


Hasher = Callable[[bytes, bytes], int]


class Cookies:
    """The fleet's secrets (the first signs, all verify) and the clock cookies are
    stamped with. `set_secrets` swaps the secrets in one assignment, so a query never
    sees half a rotation."""

    def __init__(self, secrets: Sequence[bytes], clock: Callable[[], int],
                 hasher: Hasher = siphash24) -> None:
        self.secrets: tuple[bytes, ...] = ()
        self.set_secrets(secrets)
        self.clock = clock
        self.hasher = hasher  # the native siphash when the extension is there: faster

    def set_secrets(self, secrets: Sequence[bytes]) -> None:
        if not secrets or any(len(secret) != SECRET_SIZE for secret in secrets):
            raise ValueError("cookie secrets: at least one, each of 16 bytes")
        self.secrets = tuple(secrets)

    def server_cookie(self, secret: bytes, client: bytes, stamp: bytes, address: bytes) -> bytes:
        """Version 1, reserved 0, `stamp` (4 bytes), and the hash of it all (RFC 9018 4.4)."""
        head = b"\x01\x00\x00\x00" + stamp
        return head + self.hasher(secret, client + head + address).to_bytes(8, "little")

    def answer(self, cookie: bytes, address: bytes) -> tuple[bytes, bool]:
        """For the COOKIE option of a query (its length already checked) from `address`
        (packed; empty when unknown): the option value the reply carries, and whether
        the query's server cookie verified."""
        client, sent = cookie[:CLIENT_COOKIE], cookie[CLIENT_COOKIE:]
        now = self.clock() & 0xFFFFFFFF
        signer = self._verify(client, sent, address, now)
        if signer == 0 and sent[1:4] == b"\x00\x00\x00" and _age(sent, now) <= REISSUE_AGE:
            return cookie, True  # ours, signed with the current secret, fresh: echoed
        fresh = self.server_cookie(self.secrets[0], client, TIMESTAMP.pack(now), address)
        return client + fresh, signer >= 0

    def _verify(self, client: bytes, sent: bytes, address: bytes, now: int) -> int:
        """The index of the secret that made `sent`, -1 when none did or it is stale."""
        if len(sent) != SERVER_COOKIE or sent[0] != VERSION:
            return -1
        age = _age(sent, now)
        if age > MAX_AGE or age < -MAX_AHEAD:
            return -1
        message = client + sent[:8] + address
        for index, secret in enumerate(self.secrets):
            digest = self.hasher(secret, message).to_bytes(8, "little")
            if hmac.compare_digest(digest, sent[8:]):
                return index
        return -1


def _age(server: bytes, now: int) -> int:
    """Seconds since the cookie's timestamp, in serial number arithmetic (RFC 1982):
    negative when it lies ahead."""
    age = (now - TIMESTAMP.unpack_from(server, 4)[0]) & 0xFFFFFFFF
    return age - (1 << 32) if age >= 1 << 31 else age
