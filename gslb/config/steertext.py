"""Edit a steering YAML file record by record, keeping its comments and layout.

A steered record change (gslb/config/changes.py) sets one record to a mapping;
`set_records` writes such settings into the text. Most (a weight, a drain, a member
added) are edits of a few characters where the text says it (gslb/config/steerspans.py);
the others go through ruamel.yaml's round-trip mode, which keeps the comments, key order
and flow style of what an edit does not touch, with each record changed in place. So an
operator who reads `zones/<zone>.gslb.yaml` after an API call still finds their notes,
and every line of what no setting changed is kept exactly as it was written. The result
depends only on the text and the settings: the API's node and every node that replays
the change get the same text.
"""

from __future__ import annotations

import copy
import difflib
import functools
import io
from typing import Any, Iterable, Iterator

import dns.name
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarbool import ScalarBoolean

from gslb.config import steerspans
from gslb.config.changes import same
from gslb.config.rrsets import FieldProblem, Invalid
from gslb.config.steerspans import entries
from gslb.load.steering.files import LOADER

Setting = tuple[str, str, Any]  # (owner, type, the record's mapping or None to remove it)


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


def records(text: str | None, origin: dns.name.Name) -> dict[tuple[str, str], Any]:
    """Every steered record of a steering text, as plain data by (owner, type), read as
    `gslb check` and the DNS server read it (libyaml). The caller's own copy."""
    return copy.deepcopy(_records(text or "", origin))


@functools.lru_cache(maxsize=8)  # a write reads the record it changes, and then its ETag
def _records(text: str, origin: dns.name.Name) -> dict[tuple[str, str], Any]:
    try:
        data = yaml.load(text, Loader=LOADER) if text else {}
    except yaml.YAMLError as exc:
        raise Invalid([FieldProblem("steering", f"the steering file is not valid YAML: {exc}")], 409)
    if not isinstance(data, dict):
        raise Invalid([FieldProblem("steering", "the steering file is not a mapping")], 409)
    return {(owner, rtype): plain(item) for owner, rtype, item in entries(data, origin)}


def set_records(text: str | None, origin: dns.name.Name, settings: Iterable[Setting]) -> str | None:
    """The steering text with each setting written in, in order (`text` itself when
    every record already reads as its setting says). A changed record is edited in
    place: what is the same keeps its node, so its comments and style; a record whose
    nodes are shared with others (YAML anchors, merge keys) is written out whole
    instead, so no other record changes with it. Every line of a section no setting
    changed is kept as it was written. Settings that span edits can write are written
    so (gslb/config/steerspans.py), a hundred times faster."""
    settings = list(settings)
    if text:
        quick = steerspans.edit(text, origin, settings)
        if quick is not None:
            return quick
    doc = load(text, origin)
    was = plain(doc)  # as loaded, to tell which parts the settings change
    changed = False
    for owner, rtype, after in settings:
        current = find(doc, origin, owner, rtype)
        if same(plain(current) if current is not None else None, after):
            continue
        changed = True
        if current is None or after is None:
            put(doc, origin, owner, rtype, after)
            continue
        tail = _take_tail_comment(current)
        record = _graft(current, after, False)
        if record is not current:
            put(doc, origin, owner, rtype, record)
        if tail is not None:
            _set_tail_comment(record, tail)
    if not changed:
        return text
    return _dump(doc, text, was)


def _dump(doc: CommentedMap, before: str | None, was: Any) -> str:
    """The document as text. With `before` (the text it was loaded from, which read
    `was` as plain data), every line of a part whose value did not change (a key and
    what follows it up to the next key or list item at any depth, in block style) is
    kept exactly as it was written: the YAML library would otherwise re-emit some
    untouched ones in its own style (`[health, {priority: ...}]` came back as
    `[health, priority: ...]`), even in a record that changed elsewhere. The library's
    own text when keeping lines would read otherwise (a file indented otherwise, say)."""
    out = io.StringIO()
    _yaml().dump(doc, out)
    after = out.getvalue()
    if not before:
        return after
    try:
        old_lines, new_lines = before.splitlines(True), after.splitlines(True)
        old_owner, old_blocks = _owners(before, len(old_lines))
        new_owner, new_blocks = _owners(after, len(new_lines))
    except yaml.YAMLError:  # a text the fast parser refuses: keep the library's output
        return after
    now = plain(doc)
    same_parts = {part for part in set(old_owner) | set(new_owner) if part is not None
                  and _same_part(_at(was, part), _at(now, part), part in old_blocks & new_blocks)}
    kept: list[str] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        touched = {old_owner[i] for i in range(i1, i2)} | {new_owner[j] for j in range(j1, j2)}
        keep_old = tag != "equal" and touched and None not in touched and touched <= same_parts
        kept += old_lines[i1:i2] if keep_old else new_lines[j1:j2]
    text = "".join(kept)
    try:
        if yaml.load(text, Loader=LOADER) == yaml.load(after, Loader=LOADER):
            return text
    except yaml.YAMLError:
        pass
    return after


Part = tuple[str | int, ...]  # a path of keys and list indexes from the document's root


def _owners(text: str, count: int) -> tuple[list[Part | None], set[Part]]:
    """For each line of a steering text, the part it belongs to: the deepest key or list
    item (in block style) that starts on it or before it; None before the first key.
    And the parts that are block mappings or lists (whose items own their lines)."""
    starts: list[tuple[int, int, Part]] = []
    blocks: set[Part] = set()
    seen: set[int] = set()

    def walk(node: yaml.Node, path: Part) -> None:
        if id(node) in seen:  # an alias: its lines are the anchor's, elsewhere
            return
        seen.add(id(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style:
            blocks.add(path)
        if isinstance(node, yaml.MappingNode) and not node.flow_style:
            for key, value in node.value:
                here = (*path, str(key.value))
                starts.append((key.start_mark.line, len(here), here))
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode) and not node.flow_style:
            for index, item in enumerate(node.value):
                here = (*path, index)
                starts.append((item.start_mark.line, len(here), here))
                walk(item, here)

    root = yaml.compose(text, Loader=LOADER)
    if root is not None:
        walk(root, ())
    starts.sort(key=lambda start: start[:2])
    owners: list[Part | None] = [None] * count
    for index, (line, _, part) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else count
        for number in range(line, min(end, count)):
            owners[number] = part
    return owners, blocks


def _at(data: Any, part: Part) -> Any:
    """What `part` is in plain data; a marker when it is not there."""
    for step in part:
        if isinstance(data, dict) and isinstance(step, str) and step in data:
            data = data[step]
        elif isinstance(data, list) and isinstance(step, int) and step < len(data):
            data = data[step]
        else:
            return _MISSING
    return data


def _same_part(old: Any, new: Any, block: bool) -> bool:
    """Whether a part's own lines read the same: a block mapping's or list's lines are
    its key (its items' are theirs), a scalar's or flow collection's all of it."""
    if old is _MISSING or new is _MISSING:
        return False
    if block:
        return type(old) is type(new)
    return same(old, new)


_MISSING = object()


def plain(node: Any) -> Any:
    """JSON-ready copy of a YAML node in Python's own types (the YAML library's
    ScalarFloat is a float, its ScalarBoolean a bool), so that it compares, prints and
    serializes alike in every process."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, (bool, ScalarBoolean)):
        return bool(node)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _own(node: Any) -> bool:
    """A node only its place in the document uses: no anchor (aliases may name it
    elsewhere) and no merge key (its keys are partly another node's)."""
    return node.yaml_anchor() is None and not getattr(node, "merge", None)


def _graft(node: Any, value: Any, flow: bool) -> Any:
    """`node` made to read `value`: the same node where they are equal; changed in
    place where both are mappings or both lists (keys and items kept, updated,
    removed, added at the end); else a new node, in flow style when `flow` and it is
    flat (a mapping among flow mappings in a list, say)."""
    if same(plain(node), value):
        return node
    if isinstance(value, dict) and isinstance(node, CommentedMap) and _own(node):
        keys = {str(k): k for k in node}
        for name, key in keys.items():
            if name not in value:
                del node[key]
        inner = bool(node.fa.flow_style())
        for name, item in value.items():
            if name not in keys:
                node[name] = _fresh(item, inner)
                continue
            child = node[keys[name]]
            grafted = _graft(child, item, inner)
            if grafted is not child:
                node[keys[name]] = grafted
        return node
    if isinstance(value, list) and isinstance(node, CommentedSeq) and _own(node):
        inner = bool(node.fa.flow_style()) or any(_flat(item) for item in node)
        for index, item in enumerate(value):
            if index >= len(node):
                node.append(_fresh(item, inner))
                continue
            grafted = _graft(node[index], item, inner)
            if grafted is not node[index]:
                node[index] = grafted
        while len(node) > len(value):
            del node[len(node) - 1]
        return node
    return _fresh(value, flow)


def _flat(node: Any) -> bool:
    """A scalar, or a mapping written in flow style (`{value: ..., weight: ...}`)."""
    if isinstance(node, (CommentedMap, CommentedSeq)):
        return bool(node.fa.flow_style())
    return not isinstance(node, (dict, list))


def _fresh(value: Any, flow: bool) -> Any:
    """A new node for plain data: a list of scalars in flow style (`[health, weighted]`),
    and so a flat mapping when `flow` (among flow mappings in a list, say)."""
    node: CommentedMap | CommentedSeq
    if isinstance(value, dict):
        node, items = CommentedMap((k, _fresh(v, False)) for k, v in value.items()), list(value.values())
    elif isinstance(value, list):
        node, items, flow = CommentedSeq(_fresh(v, False) for v in value), value, True
    else:
        return value
    if flow and items and not any(isinstance(item, (dict, list)) for item in items):
        node.fa.set_flow_style()
    return node


def find(doc: CommentedMap, origin: dns.name.Name, owner: str, rtype: str) -> Any:
    for name, kind, item in entries(doc, origin):
        if name == owner and kind == rtype:
            return item
    return None


def put(doc: CommentedMap, origin: dns.name.Name, owner: str, rtype: str, body: Any) -> None:
    """Set (or, with None, remove) the record (owner, rtype) in place."""
    records = doc["records"]
    for key in list(records):
        if steerspans.owner(key, origin) != owner:
            continue
        value = records[key]
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, dict) and str(item.get("type", "")).upper() == rtype:
                if isinstance(value, list):
                    if body is None:
                        del value[index]
                        if not value:
                            _remove(records, key)
                    else:
                        value[index] = body
                elif body is None:
                    _remove(records, key)
                else:
                    records[key] = body
                return
        if body is not None:  # the name has other steered types: make it a list
            records[key] = CommentedSeq([*items, body]) if items else body
            return
    if body is not None:
        relative = dns.name.from_text(owner).relativize(origin).to_text()
        last = records[list(records)[-1]] if records else None
        record = body if isinstance(body, CommentedMap) else _commented(body)
        records[relative] = record
        if last is not None:  # the comment that closes the section follows the new record
            _set_tail_comment(record, _take_tail_comment(last))


def _remove(records: CommentedMap, key: Any) -> None:
    """Remove a record; the comment written after it (the next record's heading, say)
    now follows the record before it."""
    keys = list(records)
    tail = _take_tail_comment(records[key])
    del records[key]
    index = keys.index(key)
    if index > 0:
        _set_tail_comment(records[keys[index - 1]], tail)


def _commented(body: Any) -> Any:
    """`body` as the YAML library's own nodes, so comments can be attached to it."""
    out = io.StringIO()
    _yaml().dump(plain(body), out)
    return _yaml().load(out.getvalue())


def _tail_slot(node: Any) -> tuple[Any, Any, int] | None:
    """Where the comment after a node's last line is kept: (container, key, place). A
    flow collection is one line: its comment is kept with its key."""
    slot = None
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node) and not node.fa.flow_style():
        key: Any = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        slot = (node, key, 2 if isinstance(node, CommentedMap) else 0)
        node = node[key]
    return slot


def _take_tail_comment(node: Any) -> Any:
    """Detach and return the comment written after a node's last line, if any."""
    slot = _tail_slot(node)
    if slot is None:
        return None
    items = slot[0].ca.items.get(slot[1])
    if not items or len(items) <= slot[2] or items[slot[2]] is None:
        return None
    token, items[slot[2]] = items[slot[2]], None
    return token


def _set_tail_comment(node: Any, token: Any) -> None:
    """Write `token` after a node's last line (replacing the comment there)."""
    slot = _tail_slot(node)
    if slot is None or token is None:
        return
    slots = slot[0].ca.items.setdefault(slot[1], [None] * 4)
    slots[slot[2]] = token


def members(record: Any) -> Iterator[tuple[str, Any, int]]:
    """(pool name, members list, index) for every member of a record."""
    for pool_name, pool in (record.get("pools") or {}).items():
        listed = pool.get("members") if isinstance(pool, dict) else None
        if isinstance(listed, list):
            for index in range(len(listed)):
                yield str(pool_name), listed, index


def member_value(listed: list, index: int) -> str:
    item = listed[index]
    return str(item.get("value")) if isinstance(item, dict) else str(item)


def set_member_fields(listed: list, index: int, fields: dict[str, Any]) -> None:
    """Update a member's keys (a record as plain data); the scalar shorthand becomes a
    mapping first. A value of None removes the key (back to its default)."""
    item = listed[index]
    if not isinstance(item, dict):
        item = listed[index] = {"value": item}
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
