"""What the documents hold that a test can run or check: fenced code blocks with their
`<!-- docrun ... -->` annotations, and every `gslb COMMAND ...` they show.

An annotation is an HTML comment right before a block (blank lines may come between):

    <!-- docrun
    expect: REGEX     the block's output has a match (re.MULTILINE); repeatable
    reject: REGEX     ... and none of this
    in: TEXT          the expect/reject lines after this one look only at the output of
                      the commands whose text has TEXT
    status: 412 422   HTTP statuses >= 400 the block shows on purpose
    server: redis     run against `gslb api --redis` and a `gslb serve --redis` node
    skip: REASON      not run (Docker, packages, the whole test suite): say why
    -->

or on one line, `<!-- docrun skip: needs Docker -->`. tests/e2e/test_docs_run.py runs the
blocks; tests/test_docs.py checks the commands against their --help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The documents a user follows: the docs the e2e test runs, and the synopses it checks.
RUN_DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "api.md",
                 ROOT / "docs" / "operator-guide.md", ROOT / "docs" / "steering.md"]
SHELL = {"sh", "bash", "console", "shell"}
KEYS = {"expect", "reject", "in", "status", "server", "skip"}

FENCE = re.compile(r"^(\s*)```\s*([\w-]*)\s*$")
ANNOTATION = re.compile(r"<!--\s*docrun\b(.*?)-->", re.S)


@dataclass
class Check:
    """An expect (wanted) or reject line: a pattern for the output of the commands whose
    text has `command` (None: the whole block's)."""

    wanted: bool
    command: str | None
    pattern: str


@dataclass
class Block:
    """One fenced block: where it is, its language, its text and its annotation."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    directives: dict[str, list[str]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in SHELL

    def first(self, key: str) -> str | None:
        values = self.directives.get(key)
        return values[0] if values else None


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order; a bad annotation is a ValueError
    naming its line."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, language = opening.group(1), opening.group(2)
        end = index + 1
        while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
            end += 1
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                for line in lines[index + 1:end]]
        pairs = annotation(path, lines, index)
        directives: dict[str, list[str]] = {}
        for key, value in pairs:
            directives.setdefault(key, []).append(value)
        found.append(Block(path, index + 1, language, "\n".join(body) + "\n", directives,
                           _checks(pairs)))
        index = end + 1
    return found


def annotation(path: Path, lines: list[str], fence: int) -> list[tuple[str, str]]:
    """The (key, value) lines, in order, of the `<!-- docrun ... -->` comment that ends
    right before line `fence` (0-based)."""
    end = fence - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return []
    start = end
    while start > 0 and "<!--" not in lines[start]:
        start -= 1
    match = ANNOTATION.search("\n".join(lines[start:end + 1]))
    if not match:
        return []
    directives = []
    for number, text in enumerate(match.group(1).splitlines(), start + 1):
        text = text.strip().removeprefix(":").strip()
        if not text:
            continue
        key, colon, value = text.partition(":")
        if not colon or key.strip() not in KEYS or not value.strip():
            raise ValueError(f"{path.relative_to(ROOT)}:{number}: not a docrun directive "
                             f"(KEY: VALUE, KEY one of {sorted(KEYS)}): {text!r}")
        directives.append((key.strip(), value.strip()))
    return directives


def _checks(directives: list[tuple[str, str]]) -> list[Check]:
    checks, command = [], None
    for key, value in directives:
        if key == "in":
            command = value
        elif key in ("expect", "reject"):
            checks.append(Check(key == "expect", command, value))
    return checks


# `gslb COMMAND ...` where the word gslb stands alone (not gslb_metric, gslb.module, .../gslb:).
INVOCATION = re.compile(r"(?<![\w./-])gslb[ \t]+(?=[a-z])")
SHELL_END = re.compile(r"\s#|[;&|)`]|$")
SYNOPSIS_END = re.compile(r"\s#|[;`]|$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


@dataclass
class Invocation:
    """`gslb` followed by what a reader would type (or a synopsis of it)."""

    where: str
    text: str  # after "gslb "

    @property
    def words(self) -> list[str]:
        return self.text.split()


def invocations(path: Path) -> list[Invocation]:
    """Every `gslb ...` in a document's code: lines of fenced blocks (continuations
    joined) and inline code spans outside them."""
    found: list[Invocation] = []
    relative = path.relative_to(ROOT)
    for block in blocks(path):
        end = SHELL_END if block.runnable else SYNOPSIS_END
        lines = block.text.splitlines()
        first = 0
        while first < len(lines):
            last = first
            while lines[last].endswith("\\") and last + 1 < len(lines):
                last += 1
            command = " ".join(line.removesuffix("\\").strip() for line in lines[first:last + 1])
            found += _after_gslb(f"{relative}:{block.line + first + 1}", command, end)
            first = last + 1
    # inline spans: the blocks blanked out first, keeping line numbers
    prose = re.sub(r"^\s*```.*?^\s*```", lambda m: "\n" * m.group(0).count("\n"),
                   path.read_text(), flags=re.S | re.M)
    for span in CODE_SPAN.finditer(prose):
        number = prose.count("\n", 0, span.start()) + 1
        found += _after_gslb(f"{relative}:{number}", " ".join(span.group(2).split()),
                             SYNOPSIS_END)
    return found


def _after_gslb(where: str, line: str, end: re.Pattern[str]) -> list[Invocation]:
    found = []
    for match in INVOCATION.finditer(line):
        rest = line[match.end():]
        stop = end.search(rest)
        found.append(Invocation(where, rest[:stop.start() if stop else len(rest)].strip()))
    return found
