"""Edit a steering YAML file as a document, keeping its comments and layout.

ruamel.yaml's round-trip mode keeps comments, key order and flow style of everything the
edit does not touch, so an operator who reads `zones/<zone>.gslb.yaml` after an API call
still finds their notes. The edited text is then checked with `gslb check`'s own rules
(`steering_from_text`) before anything is written.
"""

from __future__ import annotations

import difflib
import io
from typing import Any, Iterator

import dns.exception
import dns.name
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gslb.config.rrsets import FieldProblem, Invalid


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)  # "  - item" under its key, as written by hand
    return yaml


def load(text: str | None, origin: dns.name.Name) -> CommentedMap:
    """The document (a fresh one, `zone:` and `records:`, when there is no file yet)."""
    if not text:
        doc = CommentedMap()
        doc["zone"] = origin.to_text()
        doc["records"] = CommentedMap()
        return doc
    doc = _yaml().load(text)
    if not isinstance(doc, CommentedMap):
        raise Invalid([FieldProblem("steering", "the steering file is not a mapping")], 409)
    if doc.get("records") is None:
        doc["records"] = CommentedMap()
    return doc


def dump(doc: CommentedMap, before: str | None = None) -> str:
    """The document as text. With `before` (the text it was loaded from), every line of
    a top-level section or record the edit left unchanged is kept exactly as it was
    written: the YAML library would otherwise re-emit some untouched ones in its own
    style (`[health, {priority: ...}]` came back as `[health, priority: ...]`)."""
    out = io.StringIO()
    _yaml().dump(doc, out)
    after = out.getvalue()
    if not before:
        return after
    try:
        old, new = _yaml().load(before), _yaml().load(after)  # line numbers of each text
    except Exception:
        return after
    old_lines, new_lines = before.splitlines(True), after.splitlines(True)
    old_owner, new_owner = _owners(old, len(old_lines)), _owners(new, len(new_lines))
    same = {name for name in set(old_owner) | set(new_owner)
            if name is not None and _section(old, name) == _section(new, name)}
    kept: list[str] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        touched = {old_owner[i] for i in range(i1, i2)} | {new_owner[j] for j in range(j1, j2)}
        keep_old = tag != "equal" and touched and None not in touched and touched <= same
        kept += old_lines[i1:i2] if keep_old else new_lines[j1:j2]
    return "".join(kept)


def _owners(doc: Any, count: int) -> list[tuple[str, ...] | None]:
    """For each line of the document's text, the section it belongs to: ("records",
    NAME) for a record, (KEY,) for another top-level key; None before the first."""
    starts: list[tuple[int, tuple[str, ...]]] = []
    if isinstance(doc, CommentedMap):
        for key in doc:
            value = doc[key]
            if key == "records" and isinstance(value, CommentedMap):
                starts.append((doc.lc.key(key)[0], (str(key),)))
                starts += [(value.lc.key(name)[0], ("records", str(name))) for name in value]
            else:
                starts.append((doc.lc.key(key)[0], (str(key),)))
    starts.sort()
    owners: list[tuple[str, ...] | None] = [None] * count
    for index, (line, name) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else count
        for number in range(line, min(end, count)):
            owners[number] = name
    return owners


def _section(doc: Any, name: tuple[str, ...]) -> Any:
    """The plain value of a section (`_owners`' names) of a document; a marker for
    none, so a section only one side has is never "the same"."""
    node: Any = doc
    for part in name:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return plain(node) if name != ("records",) else sorted(map(str, node))


_MISSING = object()


def plain(node: Any) -> Any:
    """JSON-ready copy of a YAML node."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def _owner(key: object, origin: dns.name.Name) -> str | None:
    try:
        name = origin if str(key) == "@" else dns.name.from_text(str(key), origin)
    except dns.exception.DNSException:
        return None
    return name.to_text().lower()


def entries(doc: CommentedMap, origin: dns.name.Name) -> Iterator[tuple[str, str, Any]]:
    """(owner, type, record mapping) for every steered record in the document."""
    for key, value in (doc.get("records") or {}).items():
        owner = _owner(key, origin)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if owner is not None and isinstance(item, dict):
                yield owner, str(item.get("type", "")).upper(), item


def find(doc: CommentedMap, origin: dns.name.Name, owner: str, rtype: str) -> Any:
    for name, kind, item in entries(doc, origin):
        if name == owner and kind == rtype:
            return item
    return None


def put(doc: CommentedMap, origin: dns.name.Name, owner: str, rtype: str, body: dict | None) -> None:
    """Set (or, with None, remove) the record (owner, rtype) in place."""
    records = doc["records"]
    for key in list(records):
        if _owner(key, origin) != owner:
            continue
        value = records[key]
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, dict) and str(item.get("type", "")).upper() == rtype:
                if isinstance(value, list):
                    if body is None:
                        del value[index]
                        if not value:
                            del records[key]
                    else:
                        value[index] = body
                elif body is None:
                    del records[key]
                else:
                    records[key] = body
                return
        if body is not None:  # the name has other steered types: make it a list
            records[key] = CommentedSeq([*items, body]) if items else body
            return
    if body is not None:
        relative = dns.name.from_text(owner).relativize(origin).to_text()
        last = records[list(records)[-1]] if records else None
        record = _commented(body)
        records[relative] = record
        if last is not None:  # the comment that closes the section follows the new record
            _move_tail_comment(last, record)


def _commented(body: Any) -> Any:
    """`body` as the YAML library's own nodes, so comments can be attached to it."""
    out = io.StringIO()
    _yaml().dump(plain(body), out)
    return _yaml().load(out.getvalue())


def _tail_slot(node: Any) -> tuple[Any, Any, int] | None:
    """Where the comment after a node's last line is kept: (container, key, place)."""
    slot = None
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        key: Any = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        slot = (node, key, 2 if isinstance(node, CommentedMap) else 0)
        node = node[key]
    return slot


def _move_tail_comment(source: Any, target: Any) -> None:
    """Move the comment written after `source` (a blank line and the next section's
    heading, say) to after `target`."""
    start, end = _tail_slot(source), _tail_slot(target)
    if start is None or end is None:
        return
    items = start[0].ca.items.get(start[1])
    if not items or len(items) <= start[2] or items[start[2]] is None:
        return
    token, items[start[2]] = items[start[2]], None
    slots = end[0].ca.items.setdefault(end[1], [None] * 4)
    slots[end[2]] = token


def members(record: Any) -> Iterator[tuple[str, Any, int]]:
    """(pool name, members list, index) for every member of a record."""
    for pool_name, pool in (record.get("pools") or {}).items():
        listed = pool.get("members") if isinstance(pool, dict) else None
        if isinstance(listed, list):
            for index in range(len(listed)):
                yield str(pool_name), listed, index


def member_value(listed: CommentedSeq, index: int) -> str:
    item = listed[index]
    return str(item.get("value")) if isinstance(item, dict) else str(item)


def set_member_fields(listed: CommentedSeq, index: int, fields: dict[str, Any]) -> None:
    """Update a member's keys; the scalar shorthand becomes a flow mapping first.
    A value of None removes the key (back to its default)."""
    item = listed[index]
    if not isinstance(item, dict):
        item = CommentedMap([("value", item)])
        item.fa.set_flow_style()
        listed[index] = item
    for key, value in fields.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value


def path_at(text: str, line: int) -> str | None:
    """The key path of what is written at `line` (1-based) of a steering text, e.g.
    `records.www2.pools.p.members.0.weight`: the deepest key or list item that starts
    on that line (None when nothing does). An API reply names a problem the loader found
    by line with it, since the client sent JSON, not that text."""
    try:
        root = _yaml().load(text)
    except Exception:  # the loader reports a text that does not parse
        return None
    best: list[str] = []

    def walk(node: Any, path: list[str]) -> None:
        nonlocal best
        if isinstance(node, CommentedMap):
            places = [(str(key), node.lc.key(key)[0], node[key]) for key in node]
        elif isinstance(node, CommentedSeq):
            places = [(str(index), node.lc.item(index)[0], item) for index, item in enumerate(node)]
        else:
            return
        on_line = [name for name, first, _ in places if first + 1 == line]
        if on_line:  # several keys on one line (a flow mapping): the mapping itself
            here = [*path, on_line[0]] if len(on_line) == 1 else path
            if len(here) > len(best):
                best = here
        for name, _, child in places:
            walk(child, [*path, name])

    walk(root, [])
    return ".".join(best) if best else None
