"""The DNS cookie secrets of a node (`--cookie-secret FILE`), read and watched.

The file holds hex secrets of 16 bytes (32 hex digits), one a line; blank lines and
`#` comments are skipped. The first line signs new server cookies, every line verifies,
so a fleet rotates by adding a new line and later dropping the old one
(docs/operator-guide.md, "DNS cookies"). Without a file each process draws a random
secret at start: the cookies it gives are then its own, and another node (or a restart)
treats them as unknown (answered, never marked valid).

The file is re-read on SIGHUP and when its mtime, size or inode change (looked at with
the GeoIP files, every few seconds). A file that cannot be read, or holds a bad line,
keeps the secrets in use, and says why in the log.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from gslb.dns.cookies import SECRET_SIZE, Cookies, siphash24
from gslb.server import fastpath

log = logging.getLogger("gslb.server")
MAX_SECRETS = 8  # what the C path holds (native/cookie.c); a rotation needs two


class CookieSecretError(ValueError):
    """The secret file cannot be used."""


def read_secrets(path: Path) -> list[bytes]:
    """The secrets a file holds, in order; CookieSecretError names the first bad line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CookieSecretError(f"{path}: cannot read: {exc}") from exc
    secrets = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            secret = bytes.fromhex(line)
        except ValueError:
            secret = b""
        if len(secret) != SECRET_SIZE:
            raise CookieSecretError(f"{path}:{number}: a secret is {2 * SECRET_SIZE} hex "
                                    f"digits (16 bytes)")
        secrets.append(secret)
    if not secrets:
        raise CookieSecretError(f"{path}: no secret in it")
    if len(secrets) > MAX_SECRETS:
        raise CookieSecretError(f"{path}: {len(secrets)} secrets; at most {MAX_SECRETS}")
    return secrets


def _signature(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size, status.st_ino


class CookieSecrets:
    """The responder's `Cookies` (the real clock) and the C path's copy of its secrets,
    kept equal."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.signature: tuple[int, int, int] | None = None
        if path is None:
            secrets = [os.urandom(SECRET_SIZE)]
        else:
            self.signature = _signature(path)
            secrets = read_secrets(path)
        module = fastpath.native()
        self.cookies = Cookies(secrets, clock=lambda: int(time.time()),
                               hasher=module.siphash if module is not None else siphash24)
        fastpath.set_cookies(secrets)

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; True when the secrets did."""
        if self.path is None:
            return False
        try:
            signature = _signature(self.path)
        except OSError as exc:
            if self.signature is not None:
                log.error("cookie secrets: %s: %s; keeping the secrets in use", self.path,
                          exc.strerror or exc)
                self.signature = None
            return False
        if signature == self.signature:
            return False
        self.signature = signature
        try:
            secrets = read_secrets(self.path)
        except CookieSecretError as exc:
            log.error("cookie secrets: %s; keeping the secrets in use", exc)
            return False
        if tuple(secrets) == self.cookies.secrets:
            return False
        self.cookies.set_secrets(secrets)
        fastpath.set_cookies(secrets)
        log.info("cookie secrets: %d read from %s (the first signs)", len(secrets), self.path)
        return True
