"""Quick record edits: steered record settings written as edits of a few characters.

Most changes to a steered record change scalars (a weight, a priority) or keys of a flow
mapping (`state: drained` added to `{value: 192.0.2.10, weight: 3}`), turn a member
written as a plain value into a flow mapping, or add or remove a member written on a
line of its own. Those are written here as edits of the text at the spans libyaml
reports, which takes milliseconds where the round-trip YAML library takes half a second
for a record of hundreds of members; every node that replays a change writes it
(gslb/config/steertext.py). Anything else (a record added or removed, a key added to a
block mapping, YAML anchors) is not done here: `edit` answers None and the caller takes
the general way. The result is checked: it must read as the old text with exactly the
set records changed to their settings.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

import dns.exception
import dns.name
import yaml
from yaml.constructor import SafeConstructor

from gslb.config.changes import same
from gslb.load.steering.files import LOADER

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")  # no character YAML gives a meaning
RESOLVER = yaml.resolver.Resolver()
Edit = tuple[int, int, str]  # replace text[start:end] with this


class _Unsupported(Exception):
    """The setting needs more than span edits."""


def edit(text: str, origin: dns.name.Name, settings: Iterable[tuple[str, str, Any]]) -> str | None:
    """`text` with each (owner, type, mapping or None) setting written in by span
    edits; None when one needs more."""
    settings = list(settings)
    try:
        root = yaml.compose(text, Loader=LOADER)
        if not isinstance(root, yaml.MappingNode) or _shares_nodes(root):
            return None
        records = next((v for k, v in root.value if k.value == "records"), None)
        if not isinstance(records, yaml.MappingNode) or records.flow_style or not records.value:
            return None
        edits: list[Edit] = []
        added: list[str] = []
        for name, rtype, after in settings:
            node = _find(records, origin, name, rtype)
            if after is not None and not isinstance(after, dict):
                raise _Unsupported
            if node is None and after is not None:
                added += _new_record(records, origin, name, after)
            elif node is not None and after is None:
                edits.append(_removed_record(text, records, node))
            elif node is not None:
                _edits(text, node, after, edits, in_list=False)
        if added:
            end = _line_end(text, _last(records.value[-1][1]))
            edits.append((end, end, "".join(added) if text[end - 1:end] == "\n" else "\n" + "".join(added)))
        new = _apply(text, edits)
        old_data, new_data = yaml.load(text, Loader=LOADER), yaml.load(new, Loader=LOADER)
    except (_Unsupported, yaml.YAMLError):
        return None
    if not _reads_as(old_data, new_data, origin, {(o, t): a for o, t, a in settings}):
        return None
    return new


def _last(node: yaml.Node) -> yaml.Node:
    """The node written last in a block collection (itself for a scalar or a flow one)."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.value and not node.flow_style:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node


def _line_end(text: str, node: yaml.Node) -> int:
    """Where the line a node ends on ends (after its newline)."""
    end = text.find("\n", node.end_mark.index)
    return len(text) if end < 0 else end + 1


def _new_record(records: yaml.MappingNode, origin: dns.name.Name, name: str, after: dict) -> list[str]:
    """The lines of a record added at the end of the records (before the comment that
    heads what follows), in block style as the round-trip library writes one; a name
    that has a record of another type already is not done here."""
    if any(isinstance(k, yaml.ScalarNode) and owner(k.value, origin) == name for k, _ in records.value):
        raise _Unsupported
    column = records.value[0][0].start_mark.column
    key = dns.name.from_text(name).relativize(origin).to_text()
    return [line + "\n" for line in [f"{' ' * column}{_scalar(key)}:", *_block(after, column + 2)]]


def _removed_record(text: str, records: yaml.MappingNode, node: yaml.Node) -> Edit:
    """A record's lines removed, with the comments between it and the record before it
    (its heading); not the last record (`records:` would be left empty)."""
    index = next((i for i, (_, value) in enumerate(records.value) if value is node), None)
    if index is None or len(records.value) < 2:
        raise _Unsupported
    if index:
        start = _line_end(text, _last(records.value[index - 1][1]))
    else:  # the first: from its own key line (what comes before is the records' own)
        start = text.rfind("\n", 0, records.value[0][0].start_mark.index) + 1
    return (start, _line_end(text, _last(node)), "")


def _block(value: Any, indent: int) -> list[str]:
    """Plain data in block style at `indent` (what a key holds is written 2 further in,
    a list's `- ` too), as the round-trip library writes a new record."""
    pad, lines = " " * indent, []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{_scalar(key)}:", *_block(item, indent + 2)]
            else:
                lines.append(f"{pad}{_scalar(key)}: {_scalar(item)}")
        return lines
    for item in value:
        if isinstance(item, dict) and item:
            inner = _block(item, indent + 2)
            lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
        elif isinstance(item, list) and item:
            raise _Unsupported
        else:
            lines.append(f"{pad}- {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    """A scalar (or an empty mapping or list) as YAML writes it in flow context; a
    number or a plain word as it is, without asking the emitter (a record of hundreds
    of members has thousands)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and PLAIN.fullmatch(value) and RESOLVER.resolve(
            yaml.ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str":
        return value
    return _flow([value])[1:-1]


def _shares_nodes(root: yaml.Node) -> bool:
    """Whether a node is reached twice (an alias of an anchor), or a mapping merges."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    return True
                todo += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return False


def owner(key: object, origin: dns.name.Name) -> str | None:
    """The owner (absolute, lowercase) a key of `records:` names; None for no name."""
    try:
        name = origin if str(key) == "@" else dns.name.from_text(str(key), origin)
    except dns.exception.DNSException:
        return None
    return name.to_text().lower()


def entries(doc: dict, origin: dns.name.Name) -> Iterator[tuple[str, str, Any]]:
    """(owner, type, record mapping) for every steered record in a document (as the
    round-trip library or libyaml read it)."""
    for key, value in (doc.get("records") or {}).items():
        name = owner(key, origin)
        for item in value if isinstance(value, list) else [value]:
            if name is not None and isinstance(item, dict):
                yield name, str(item.get("type", "")).upper(), item


def _find(records: yaml.Node | None, origin: dns.name.Name, name: str, rtype: str) -> yaml.Node | None:
    """The record's mapping node (as `entries` finds it)."""
    if not isinstance(records, yaml.MappingNode):
        return None
    for key, value in records.value:
        if not isinstance(key, yaml.ScalarNode) or owner(key.value, origin) != name:
            continue
        for item in value.value if isinstance(value, yaml.SequenceNode) else [value]:
            if isinstance(item, yaml.MappingNode) and any(
                    k.value == "type" and isinstance(v, yaml.ScalarNode) and v.value.upper() == rtype
                    for k, v in item.value):
                return item
    return None


def _value(node: yaml.Node) -> Any:
    return SafeConstructor().construct_object(node, deep=True)


def _edits(text: str, node: yaml.Node, value: Any, edits: list[Edit], in_list: bool) -> None:
    """The span edits that make `node` read `value`; _Unsupported when it takes more."""
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("|", ">") or node.start_mark.line != node.end_mark.line:
            raise _Unsupported
        if same(_value(node), value):
            return
        if isinstance(value, dict) and in_list and _flat(value):  # a plain member -> a mapping
            edits.append((node.start_mark.index, node.end_mark.index, _flow(value)))
        elif not isinstance(value, (dict, list)):
            edits.append((node.start_mark.index, node.end_mark.index, _scalar(value)))
        else:
            raise _Unsupported
    elif isinstance(node, yaml.MappingNode) and isinstance(value, dict):
        items = {str(k.value): (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        if len(items) != len(node.value):
            raise _Unsupported
        if set(items) != set(value):
            _keys(node, items, value, edits)
        for name, (_, child) in items.items():
            if name in value:
                _edits(text, child, value[name], edits, in_list=False)
    elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
        if len(value) < len(node.value):
            _removed(text, node, value, edits)
            return
        for child, item in zip(node.value, value):
            _edits(text, child, item, edits, in_list=True)
        if len(value) > len(node.value):
            _appended(text, node, value[len(node.value):], edits)
    else:
        raise _Unsupported


def _lines_of(text: str, node: yaml.SequenceNode) -> list[tuple[int, int, str]]:
    """For each item of a block list written one per line (`- item`, maybe a comment
    after it), where its line starts and ends and how it is indented."""
    if node.flow_style:
        raise _Unsupported
    found = []
    for item in node.value:
        start = text.rfind("\n", 0, item.start_mark.index) + 1
        head = text[start:item.start_mark.index]
        indent = head.rstrip(" ")
        if item.start_mark.line != item.end_mark.line or not indent.endswith("-") \
                or indent[:-1].strip(" "):
            raise _Unsupported
        end = text.find("\n", item.end_mark.index)
        found.append((start, len(text) if end < 0 else end + 1, indent[:-1]))
    return found


def _appended(text: str, node: yaml.SequenceNode, items: list, edits: list[Edit]) -> None:
    """Items added at the end of a block list, a line each, as the last one is written."""
    lines = _lines_of(text, node)
    if not lines or not all(not isinstance(i, (dict, list)) or isinstance(i, dict) and _flat(i)
                            for i in items):
        raise _Unsupported
    _, end, indent = lines[-1]
    new = "".join(f"{indent}- {_flow(item) if isinstance(item, dict) else _scalar(item)}\n"
                  for item in items)
    edits.append((end, end, new if text[end - 1:end] == "\n" else "\n" + new))


def _removed(text: str, node: yaml.SequenceNode, value: list, edits: list[Edit]) -> None:
    """Items removed from a block list (the others unchanged): their lines go."""
    lines = _lines_of(text, node)
    kept = 0
    for child, (start, end, _) in zip(node.value, lines):
        if kept < len(value) and same(_value(child), value[kept]):
            kept += 1
        else:
            edits.append((start, end, ""))
    if kept != len(value):
        raise _Unsupported


def _keys(node: yaml.MappingNode, items: dict, value: dict, edits: list[Edit]) -> None:
    """Keys removed from and added to a one-line flow mapping (added at its end)."""
    if not node.flow_style or node.start_mark.line != node.end_mark.line:
        raise _Unsupported
    pairs = node.value
    kept = [name in value for name in items]
    for index, present in enumerate(kept):
        if present:
            continue
        key, item = pairs[index]
        if index + 1 < len(pairs):  # "key: value, " up to the next key
            edits.append((key.start_mark.index, pairs[index + 1][0].start_mark.index, ""))
        elif any(kept[:index]):  # the last: from the end of the last kept value
            previous = max(i for i in range(index) if kept[i])
            edits.append((pairs[previous][1].end_mark.index, item.end_mark.index, ""))
        else:
            edits.append((key.start_mark.index, item.end_mark.index, ""))
    added = {name: item for name, item in value.items() if name not in items}
    if not added:
        return
    if not _flat(added):
        raise _Unsupported
    text = _flow(added)[1:-1]
    if any(kept):
        last = max(i for i in range(len(kept)) if kept[i])
        edits.append((pairs[last][1].end_mark.index, pairs[last][1].end_mark.index, ", " + text))
    else:
        edits.append((node.end_mark.index - 1, node.end_mark.index - 1, text))


def _flat(value: dict) -> bool:
    return not any(isinstance(item, (dict, list)) for item in value.values())


def _flow(value: Any) -> str:
    """A mapping or list in flow style on one line, scalars quoted where YAML needs it."""
    return yaml.dump(value, Dumper=DUMPER, default_flow_style=True, sort_keys=False,
                     width=2**30).strip()


def _apply(text: str, edits: list[Edit]) -> str:
    """The edits made, the last first; overlapping edits are not done."""
    out = text
    end = len(text) + 1
    for start, stop, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if stop > end:
            raise _Unsupported
        out = out[:start] + new + out[stop:]
        end = start
    return out


def _records(data: Any, origin: dns.name.Name) -> dict[tuple[str, str], Any] | None:
    """Every steered record of loaded data, by (owner, type); None when the same one is
    written twice."""
    found: dict[tuple[str, str], Any] = {}
    for name, rtype, item in entries(data, origin):
        if (name, rtype) in found:
            return None
        found[(name, rtype)] = item
    return found


def _reads_as(old: Any, new: Any, origin: dns.name.Name, settings: dict) -> bool:
    """Whether `new` is `old` with just the set records as they are set (None: gone)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    if {k: v for k, v in old.items() if k != "records"} != {k: v for k, v in new.items() if k != "records"}:
        return False
    before, after = _records(old, origin), _records(new, origin)
    if before is None or after is None:
        return False
    expected = {**before, **settings}
    expected = {name: record for name, record in expected.items() if record is not None}
    return after.keys() == expected.keys() and all(
        same(after[name], record) if name in settings else after[name] == record
        for name, record in expected.items())
