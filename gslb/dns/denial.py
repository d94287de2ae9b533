"""Authenticated denial in a pre-signed zone: which NSEC or NSEC3 records prove an answer.

A signed zone holds its proofs ready-made (the signer wrote the chain); serving it means
choosing, per query, the records that prove what the answer says (RFC 4035 section
3.1.3 for NSEC, RFC 5155 section 7.2 for NSEC3):

- NXDOMAIN: the name is covered, and so is the wildcard at its closest encloser (NSEC3:
  the closest encloser matched, the next closer name and the wildcard covered);
- NODATA: the name's own record shows the type missing (an empty non-terminal has no
  NSEC, so the one covering it; NSEC3 has a record per empty non-terminal, and a DS
  question under opt-out gets the closest provable encloser proof, section 7.2.4);
- a wildcard answer: the query name does not exist (NSEC: covered; NSEC3: the next
  closer name covered), plus, for a wildcard NODATA, the wildcard's own record;
- a referral without DS: the cut's record shows no DS, or under opt-out the closest
  provable encloser proof (section 7.2.7).

Every name here is a lowercase wire name; a proof is a list of owner names whose NSEC or
NSEC3 RRset (with its RRSIGs) goes into the authority section. Pure: hashing, no I/O.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from typing import Iterable, Mapping

from gslb.dns.blob import iter_records, parent_of

NSEC3 = 50
NSEC3PARAM = 51
SHA1 = 1
WILDCARD = b"\x01*"


def canonical(name_wire: bytes) -> tuple[bytes, ...]:
    """A sort key in DNSSEC canonical order (RFC 4034 section 6.1): labels from the
    root down, each compared as lowercase octets, a shorter label first."""
    labels = []
    offset = 0
    while name_wire[offset]:
        length = name_wire[offset]
        labels.append(name_wire[offset + 1 : offset + 1 + length])
        offset += length + 1
    labels.reverse()
    return tuple(labels)


def nsec3_hash(name_wire: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 section 5: SHA-1 over the name (lowercase wire) and salt, iterated."""
    digest = hashlib.sha1(name_wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def next_closer(qname: bytes, encloser: bytes) -> bytes:
    """The ancestor of `qname` (or itself) one label longer than `encloser`."""
    name = qname
    while len(parent_of(name)) > len(encloser):
        name = parent_of(name)
    return name


class Denial:
    """The zone's NSEC chain (owners in canonical order) or its NSEC3 chain (hashes in
    order, for the parameters NSEC3PARAM names)."""

    __slots__ = ("nsec_keys", "nsec_owners", "nsec_set", "hashes", "hash_owner", "salt",
                 "iterations")

    def __init__(self) -> None:
        self.nsec_keys: list[tuple[bytes, ...]] = []
        self.nsec_owners: list[bytes] = []
        self.nsec_set: frozenset[bytes] = frozenset()
        self.hashes: list[bytes] = []
        self.hash_owner: dict[bytes, bytes] = {}
        self.salt = b""
        self.iterations = 0

    @classmethod
    def build(cls, records: Mapping[bytes, bytes], hashed: Mapping[bytes, bytes], apex: bytes,
              nsec_owners: Iterable[bytes]) -> "Denial":
        """The chain index of a signed zone: its owners' blobs (`records`), its NSEC3
        records by owner (`hashed`), its apex wire name, and the owners that hold an NSEC."""
        denial = cls()
        pairs = sorted((canonical(owner), owner) for owner in nsec_owners if owner in records)
        denial.nsec_keys = [key for key, _ in pairs]
        denial.nsec_owners = [owner for _, owner in pairs]
        denial.nsec_set = frozenset(denial.nsec_owners)
        if hashed:
            denial._index_nsec3(records[apex], hashed)
        return denial

    def _index_nsec3(self, apex_blob: bytes, hashed: Mapping[bytes, bytes]) -> None:
        """Hash owners of the chain NSEC3PARAM names (else the first NSEC3's chain)."""
        params = None
        for rdtype, _, rdata in iter_records(apex_blob):
            if rdtype == NSEC3PARAM and rdata[0] == SHA1:
                params = _params(rdata)
                break
        owners: dict[bytes, bytes] = {}
        for owner, blob in hashed.items():
            for rdtype, _, rdata in iter_records(blob):
                if rdtype != NSEC3 or rdata[0] != SHA1:
                    continue
                if params is None:
                    params = _params(rdata)
                if _params(rdata) == params:
                    label = owner[1 : 1 + owner[0]].upper()
                    try:
                        owners[base64.b32hexdecode(label)] = owner
                    except ValueError:
                        pass  # not a hash: never matched, never quoted
                break
        if params is not None:
            self.iterations, self.salt = params
        self.hashes = sorted(owners)
        self.hash_owner = owners

    @property
    def nsec3(self) -> bool:
        return bool(self.hashes)

    # -- the two chains' lookups

    def _nsec_cover(self, name: bytes) -> bytes:
        """The NSEC whose owner is the last at or before `name` in canonical order."""
        index = bisect.bisect_right(self.nsec_keys, canonical(name)) - 1
        return self.nsec_owners[index]  # index -1 wraps to the last: it covers the rest

    def _nsec_at_or_cover(self, name: bytes) -> bytes:
        return name if name in self.nsec_set else self._nsec_cover(name)

    def _match3(self, name: bytes) -> bytes | None:
        return self.hash_owner.get(nsec3_hash(name, self.salt, self.iterations))

    def _cover3(self, name: bytes) -> bytes:
        """The NSEC3 whose hash is the last before the name's hash (wrapping round)."""
        digest = nsec3_hash(name, self.salt, self.iterations)
        index = bisect.bisect_left(self.hashes, digest) - 1
        return self.hash_owner[self.hashes[index]]

    def _closest_provable(self, qname: bytes, start: bytes) -> tuple[bytes, bytes, list[bytes]]:
        """(closest provable encloser, next closer name, [its match, next closer cover]):
        RFC 5155 section 7.2.1, walking up from `start` to the first name with an NSEC3."""
        encloser = start
        while True:
            match = self._match3(encloser)
            if match is not None or len(encloser) <= 1:
                break
            encloser = parent_of(encloser)
        closer = next_closer(qname, encloser)
        proof = [match] if match is not None else []
        return encloser, closer, proof + [self._cover3(closer)]

    def gap(self, qname: bytes, encloser: bytes) -> bytes:
        """All that the proofs below take from a missing `qname` besides its closest
        encloser (or the encloser of its wildcard): the owner of the NSEC that covers the
        name, or of the NSEC3 that covers its next closer name. Missing names in one gap
        get the same proof, so the answer cache shares their answer (a random-subdomain
        flood with DO, as validating resolvers send it, is one entry per gap)."""
        if self.nsec3:
            return self._cover3(next_closer(qname, encloser))
        return self._nsec_cover(qname) if self.nsec_owners else b""

    # -- proofs

    def nxdomain(self, qname: bytes, encloser: bytes) -> list[bytes]:
        """No such name, and no wildcard at its closest encloser to synthesise from."""
        if self.nsec3:
            encloser, _, proof = self._closest_provable(qname, encloser)
            return _unique(proof + [self._cover3(WILDCARD + encloser)])
        return _unique([self._nsec_cover(qname), self._nsec_cover(WILDCARD + encloser)])

    def nodata(self, qname: bytes, qtype: int) -> list[bytes]:
        """The name exists without the type (an empty non-terminal included)."""
        if self.nsec3:
            match = self._match3(qname)
            if match is not None:
                return [match]
            # No NSEC3 at the name: an opt-out delegation asked for DS (section 7.2.4).
            return _unique(self._closest_provable(qname, parent_of(qname))[2])
        return [self._nsec_at_or_cover(qname)]

    def wildcard_answer(self, qname: bytes, encloser: bytes) -> list[bytes]:
        """The query name itself does not exist, so the wildcard could answer."""
        if self.nsec3:
            return [self._cover3(next_closer(qname, encloser))]
        return [self._nsec_cover(qname)]

    def wildcard_nodata(self, qname: bytes, encloser: bytes) -> list[bytes]:
        """No such name, and the wildcard that would answer lacks the type."""
        wildcard = WILDCARD + encloser
        if self.nsec3:
            proof = [self._match3(encloser), self._cover3(next_closer(qname, encloser)),
                     self._match3(wildcard)]
            return _unique([owner for owner in proof if owner is not None])
        return _unique([self._nsec_cover(qname), self._nsec_at_or_cover(wildcard)])

    def no_ds(self, cut: bytes) -> list[bytes]:
        """The delegation at `cut` has no DS: insecure (or opt-out) child."""
        return self.nodata(cut, 43)


def _params(rdata: bytes) -> tuple[int, bytes]:
    """(iterations, salt) of NSEC3 or NSEC3PARAM rdata (hash, flags, iterations, salt)."""
    iterations = int.from_bytes(rdata[2:4], "big")
    return iterations, rdata[5 : 5 + rdata[4]]


def _unique(owners: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(owners))
