"""API bearer tokens: roles `read` < `write` < `admin`, optionally limited to zones.

A token is shown once, when it is created (`gslb token create`), as `gslb_<id>_<secret>`;
the store keeps only the SHA-256 of the secret (the secret is 256 random bits, so a
plain hash is enough: there is nothing to brute-force), which `verify` compares in
constant time. The file (`zones/.gslb/tokens.json`, or a Redis key in distributed mode)
is re-read when it changes, so a token created or revoked by the command works at once
in a running server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from gslb.config.filestore import STATE_DIR, write_atomic

ROLES = ("read", "write", "admin")
PREFIX = "gslb_"


class TokenBackend(Protocol):
    def read(self) -> tuple[object, str | None]: ...
    def write(self, text: str) -> None: ...


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    role: str
    zones: tuple[str, ...]  # absolute, lowercase; empty = every zone
    created: float
    digest: str

    def allows(self, role: str, zone: str | None = None) -> bool:
        if ROLES.index(self.role) < ROLES.index(role):
            return False
        return zone is None or not self.zones or zone.lower() in self.zones

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role,
                "zones": list(self.zones), "created": self.created}


def normal_zone(text: str) -> str:
    text = text.strip().lower()
    return text if text.endswith(".") else text + "."


class TokenFile:
    """Tokens in a JSON file (embedded mode): zones/.gslb/tokens.json."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> tuple[object, str | None]:
        """(a stamp that changes when the content does, the JSON text or None)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None, None
        return (stat.st_mtime_ns, stat.st_size), self.path.read_text(encoding="utf-8")

    def write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, text, mode=0o600)  # digests only, still nobody else's


class TokenStore:
    def __init__(self, backend: "TokenBackend") -> None:
        self.backend = backend
        self._seen: object = None
        self._tokens: dict[str, Token] = {}

    @classmethod
    def for_zones(cls, zones_dir: Path) -> "TokenStore":
        return cls(TokenFile(zones_dir / STATE_DIR / "tokens.json"))

    def _load(self) -> dict[str, Token]:
        stamp, text = self.backend.read()
        if text is None:
            self._seen, self._tokens = None, {}
        elif stamp != self._seen or stamp is None:
            data = json.loads(text)
            self._tokens = {t["id"]: Token(t["id"], t["name"], t["role"], tuple(t["zones"]),
                                           t["created"], t["digest"]) for t in data["tokens"]}
            self._seen = stamp
        return self._tokens

    def _save(self, tokens: dict[str, Token]) -> None:
        self.backend.write(json.dumps({"tokens": [asdict(t) for t in tokens.values()]}, indent=1))

    def create(self, name: str, role: str, zones: list[str]) -> tuple[Token, str]:
        if role not in ROLES:
            raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        tokens = dict(self._load())
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        token = Token(token_id, name, role, tuple(normal_zone(z) for z in zones), time.time(),
                      hashlib.sha256(secret.encode()).hexdigest())
        tokens[token_id] = token
        self._save(tokens)
        return token, f"{PREFIX}{token_id}_{secret}"

    def list(self) -> list[Token]:
        return sorted(self._load().values(), key=lambda t: t.created)

    def revoke(self, token_id: str) -> bool:
        tokens = dict(self._load())
        if tokens.pop(token_id, None) is None:
            return False
        self._save(tokens)
        return True

    def verify(self, presented: str) -> Token | None:
        if not presented.startswith(PREFIX):
            return None
        token_id, _, secret = presented[len(PREFIX):].partition("_")
        token = self._load().get(token_id)
        if token is None:
            return None
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return token if hmac.compare_digest(digest, token.digest) else None
