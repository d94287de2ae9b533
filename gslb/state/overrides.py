"""Manual overrides with an expiry: set, clear and list them, in Redis or the state file.

An override forces a member value `up`, `down` or `drain` (answered only when nothing
else in its pool is up) until a time; after that it no longer counts anywhere, so a
forgotten override reverts by itself. In Redis (`gslb:overrides`, announced on
`gslb:changes`) every node applies it; in the state file (`--state FILE`, the embedded
default) the node watching that file does. `gslb override` is the command.

Every set and clear is also logged, with who did it and why (`log_change`): in Redis
(`gslb:overrides:log`, a list) or in a JSON-lines file beside the state file
(`STATE.log`), the newest LOG_KEEP entries.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import yaml

from gslb.state.redis import CHANGES, EPOCH, OVERRIDES
from gslb.state.store import OVERRIDE_MODES, InProcessStore

LOG = "gslb:overrides:log"
LOG_KEEP = 1000
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `10m`, `2h`, `1d` -> seconds; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"duration {text!r}: expected a positive number with s, m, h or d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def set_in_redis(client: Any, value: str, mode: str, until: float, by: str = "",
                 reason: str = "") -> None:
    if mode not in OVERRIDE_MODES:
        raise ValueError(f"mode {mode!r}: expected up, down or drain")
    entry = json.dumps({"mode": mode, "until": until, "by": by, "reason": reason})
    client.hset(OVERRIDES, value, entry)
    _announce(client)


def clear_in_redis(client: Any, value: str) -> bool:
    removed = bool(client.hdel(OVERRIDES, value))
    if removed:
        _announce(client)
    return removed


def list_in_redis(client: Any, now: float | None = None) -> dict[str, dict]:
    """The overrides still in force (expired ones are removed on the way)."""
    now = time.time() if now is None else now
    active = {}
    for value, raw in client.hgetall(OVERRIDES).items():
        try:
            entry = json.loads(raw)
            until = float(entry["until"])
        except (ValueError, KeyError, TypeError):
            continue
        if until <= now:
            client.hdel(OVERRIDES, value)
        else:
            active[value] = entry
    return active


def _announce(client: Any) -> None:
    epoch = client.incr(EPOCH)
    client.publish(CHANGES, json.dumps({"epoch": epoch, "kind": "override"}))


def set_in_file(path: Path, value: str, mode: str, until: float, by: str = "",
                reason: str = "") -> None:
    """Add or replace one override in the state file, keeping everything else; the file
    is replaced by a rename, so a watching server never reads half of it."""
    data = _read(path)
    overrides = data.setdefault("overrides", {}) or {}
    entry: dict[str, Any] = {"mode": mode, "until": round(until, 3)}  # Unix seconds
    if by:
        entry["by"] = by
    if reason:
        entry["reason"] = reason
    overrides[value] = entry
    data["overrides"] = overrides
    _write(path, data)


def clear_in_file(path: Path, value: str) -> bool:
    data = _read(path)
    overrides = data.get("overrides") or {}
    if value not in overrides:
        return False
    del overrides[value]
    data["overrides"] = overrides or None
    if data["overrides"] is None:
        del data["overrides"]
    _write(path, data)
    return True


def list_in_file(path: Path) -> dict[str, dict]:
    store = InProcessStore.from_file(path) if path.exists() else InProcessStore()
    raw = (_read(path).get("overrides") or {}) if path.exists() else {}
    now = time.time()
    return {value: {"mode": mode, "until": until, "by": str(raw.get(value, {}).get("by", "")),
                    "reason": str(raw.get(value, {}).get("reason", ""))}
            for value, (mode, until) in store.overrides.items() if until > now}


def log_change(where: Any, entry: dict[str, Any]) -> None:
    """Append one override change ({time, by, value, action, mode, until, reason,
    zones}) to the log: `where` is a Redis client or the state file's path."""
    line = json.dumps(entry, sort_keys=True)
    if isinstance(where, Path):
        log = where.with_name(where.name + ".log")
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        lines = log.read_text(encoding="utf-8").splitlines()
        if len(lines) > 2 * LOG_KEEP:
            _write_text(log, "\n".join(lines[-LOG_KEEP:]) + "\n")
        return
    pipe = where.pipeline(transaction=True)
    pipe.lpush(LOG, line)
    pipe.ltrim(LOG, 0, LOG_KEEP - 1)
    pipe.execute()


def read_log(where: Any, limit: int = LOG_KEEP) -> list[dict[str, Any]]:
    """The newest override changes first."""
    if isinstance(where, Path):
        log = where.with_name(where.name + ".log")
        lines = log.read_text(encoding="utf-8").splitlines()[::-1] if log.exists() else []
    else:
        lines = where.lrange(LOG, 0, limit - 1)
    found = []
    for line in lines[:limit]:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    InProcessStore.from_file(path)  # StateFileError (with file and field) if it is broken
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _write(path: Path, data: dict) -> None:
    _write_text(path, yaml.safe_dump(data, sort_keys=False))


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
