"""YAML read as nodes, so every value keeps its line, and checked into `Problem`s.

The steering files and their `checks:` section are composed into nodes (not plain Python
objects) and walked with one `Checker` per file, which collects *every* problem as a
`file:line: message` `Problem` instead of stopping at the first. It sits beside the
loaders that use it (`gslb.load.steering`, `gslb.load.checks`) rather than in either,
so neither imports the other for it.
"""

from __future__ import annotations

from typing import Iterable

import yaml
import yaml.constructor
import yaml.nodes

from gslb.load.zonefile import Problem

# The mapping of a node: {key: (key node, value node)}
Fields = dict[str, tuple[yaml.Node, yaml.Node]]

INT, FLOAT, BOOL, NULL, STR = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "str"))
CONSTRUCTOR = yaml.constructor.SafeConstructor()


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {INT: "an integer", FLOAT: "a number", BOOL: "a boolean", NULL: "empty"}.get(
        node.tag, f'"{node.value}"')


def scalar(node: yaml.Node) -> object:
    """The Python value of a scalar node (int, float, bool, None or str)."""
    if node.tag in (INT, FLOAT, BOOL, NULL):
        return CONSTRUCTOR.construct_object(node, deep=True)
    return node.value


def as_int(node: yaml.Node) -> int:
    """The value of an int-tagged scalar node (YAML's int constructor makes an int)."""
    value = scalar(node)
    assert isinstance(value, int)
    return int(value)


def as_float(node: yaml.Node) -> float:
    """The value of an int- or float-tagged scalar node."""
    value = scalar(node)
    assert isinstance(value, (int, float))
    return float(value)


class Checker:
    """Walks one file's nodes, collecting problems; one instance per file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, node: yaml.Node | int, where: str, message: str) -> None:
        line = node if isinstance(node, int) else line_of(node)
        self.problems.append(Problem(self.file, line, f"{where}: {message}" if where else message))

    def mapping(self, node: yaml.Node, where: str, what: str, keys: Iterable[str]) -> Fields | None:
        """A mapping node as {key: (key node, value node)}; unknown and duplicate keys
        are reported. None (reported) when the node is not a mapping."""
        if not isinstance(node, yaml.MappingNode):
            self.add(node, where, f"{what} must be a mapping, not {kind_of(node)}")
            return None
        allowed = tuple(keys)
        result: Fields = {}
        for key_node, value_node in flatten(node):
            key = str(scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                self.add(key_node, where, f"{what} has a key that is not a string")
            elif key in result and not getattr(key_node, "merged", False):
                self.add(key_node, where, f'duplicate key "{key}" (first at line {line_of(result[key][0])})')
            elif allowed and key not in allowed:
                self.add(key_node, where, f'unknown key "{key}" (expected one of: {", ".join(allowed)})')
            elif key not in result or not getattr(key_node, "merged", False):
                result[key] = (key_node, value_node)
        return result

    def sequence(self, node: yaml.Node, where: str, what: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, where, f"{what} must be a list, not {kind_of(node)}")
            return None
        return list(node.value)

    def string(self, node: yaml.Node, where: str, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag in (NULL,):
            self.add(node, where, f"{what} must be a string, not {kind_of(node)}")
            return None
        return node.value  # as written: `NO` stays "NO", not YAML 1.1's false

    def integer(self, node: yaml.Node, where: str, what: str) -> int | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != INT:
            self.add(node, where, f"{what} must be an integer, not {kind_of(node)}")
            return None
        return as_int(node)

    def number(self, node: yaml.Node, where: str, what: str) -> float | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (INT, FLOAT):
            self.add(node, where, f"{what} must be a number, not {kind_of(node)}")
            return None
        return as_float(node)


def flatten(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """The mapping's pairs with YAML merge keys (`<<: *anchor`) expanded; merged key
    nodes are marked so an explicit key overrides them without being a duplicate."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    for k, v in flatten(source):
                        copy = yaml.ScalarNode(k.tag, k.value, k.start_mark, k.end_mark) \
                            if isinstance(k, yaml.ScalarNode) else k
                        copy.merged = True  # type: ignore[attr-defined]
                        merged.append((copy, v))
        else:
            pairs.append((key_node, value_node))
    explicit = {k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)}
    return [(k, v) for k, v in merged if k.value not in explicit] + pairs


def list_of(check: Checker, fields: dict, key: str, where: str) -> list[yaml.Node]:
    """The items of the list under `key` (none when it is missing); a single scalar
    stands for a one-item list."""
    if key not in fields:
        return []
    node = fields[key][1]
    if isinstance(node, yaml.ScalarNode) and node.tag != NULL:
        return [node]  # a single value for a one-item list
    items = check.sequence(node, where, key)
    return items or []
