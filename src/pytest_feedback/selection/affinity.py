"""Textual affinity: how much of what a change touched each test names.

Coverage tells which tests execute a changed line. When the line runs at import time (a constant,
a class attribute, an enum member, a registry entry), every test that imports the module executes
it, and coverage cannot tell which of them depend on it. The budget then ranks by the next best
evidence, the change's words: identifiers and string contents on the changed lines (old and new
side) and the changed module's name, looked for in each test's own text — its node id, its
function with its decorators, and the body of its classes before their first method. Rare words
weigh more (inverse document frequency over the candidate tests), as IR-based test prioritisation
does (Peng et al., ISSTA 2020).

A ranking signal only: it orders tests, selection never depends on it. It reads the test files
with a regular expression, not a parser: a budget run cannot spend a second on it.
"""

from __future__ import annotations

import bisect
import dataclasses
import keyword
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Optional

from pytest_feedback.history.records import test_file
from pytest_feedback.selection.changes import ChangeSet, RecordedFiles

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")
#: Words shorter than this say nothing (``i``, ``df``, ``ok``).
MIN_WORD = 3
#: At most this many of the change's words count, the longest first: a sweeping change names
#: everything, and the search grows with the words (on sqlglot's 2.9 MB of tests: 80 ms for 32
#: words, 740 ms for 200).
MAX_WORDS = 32
_STOP = frozenset(w.lower() for w in keyword.kwlist) | {"self", "cls", "init", "main"}
#: A definition, class or decorator at the start of a line, with its indentation (after a
#: newline rather than at ``^`` in MULTILINE mode: five times faster).
_HEADER = re.compile(r"\n([ \t]*)(?:(@)|(?:async[ \t]+)?def[ \t]+(\w+)|class[ \t]+(\w+))")
_WORD_CHAR = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def words_of(text: str) -> set[str]:
    """The words a text says: identifiers (lower case) and their parts (``snake_case``,
    ``CamelCase``), without keywords and words shorter than `MIN_WORD`."""
    out: set[str] = set()
    for ident in _WORD.findall(text):
        parts = [ident, *ident.split("_"), *_CAMEL.findall(ident)]
        out.update(p.lower() for p in parts if len(p) >= MIN_WORD)
    return out - _STOP


def change_affinity(
    changes: Optional[ChangeSet],
    rootdir: Optional[Path],
    recorded: Optional[RecordedFiles],
    nodeids: Sequence[str],
) -> dict[str, float]:
    """`affinity` of ``nodeids`` to the words of ``changes``; {} when there are none."""
    if changes is None or rootdir is None:
        return {}
    try:
        return affinity(nodeids, change_words(changes, rootdir, recorded), rootdir)
    except Exception:  # a ranking signal: never a reason to give up the budget's plan
        return {}


def change_words(changes: ChangeSet, rootdir: Path, recorded: Optional[RecordedFiles]) -> set[str]:
    """The words of every significant change: its changed lines, old and new, and its name."""
    words: set[str] = set()
    for change in changes.significant:
        path = Path(change.path)
        words |= words_of(path.parent.name if path.stem == "__init__" else path.stem)
        if change.lines and recorded is not None:
            words |= _lines_words(recorded.recorded_source(change.recorded_path), change.lines)
        if change.new_lines:
            try:
                current: Optional[str] = (rootdir / change.path).read_text(
                    encoding="utf-8", errors="replace"
                )
            except (OSError, ValueError):
                current = None
            words |= _lines_words(current, change.new_lines)
    return words


def _lines_words(text: Optional[str], lines: Iterable[int]) -> set[str]:
    if text is None:
        return set()
    all_lines = text.splitlines()
    return words_of("\n".join(all_lines[n - 1] for n in lines if 0 < n <= len(all_lines)))


@dataclasses.dataclass
class Span:
    """Character offsets of a piece of a file (see `spans`)."""

    start: int
    end: int


def spans(text: str) -> dict[str, list[Span]]:
    """Where each definition of a file is: ``"Class::method"`` or ``"function"`` -> its text
    (decorators included) and the text of each enclosing class before its first member.

    Found by indentation, as pytest names them: good enough to rank by (a ``def`` at the start
    of a line inside a string starts a definition here).
    """
    text = "\n" + text  # offsets are one more than in the file; the last line ends the file
    found: dict[str, list[Span]] = {}
    #: Open definitions and classes: (indentation, qualified name, own span, class preamble).
    stack: list[tuple[int, str, Span, Optional[Span]]] = []
    decorated: Optional[tuple[int, int]] = None  # (indentation, start) of pending decorators
    for match in _HEADER.finditer(text):
        indent = len(match.group(1))
        start = match.start() + 1
        begin = decorated[1] if decorated is not None and decorated[0] == indent else start
        while stack and stack[-1][0] >= indent:
            _, _, span, preamble = stack.pop()
            span.end = begin
            if preamble is not None and preamble.end < 0:
                preamble.end = begin
        for *_, preamble in stack:  # a class's preamble ends at its first member
            if preamble is not None and preamble.end < 0:
                preamble.end = begin
        if match.group(2):
            decorated = (indent, begin)
            continue
        decorated = None
        own = match.group(3) or match.group(4)
        qualified = f"{stack[-1][1]}::{own}" if stack else own
        span = Span(begin, -1)
        preamble = Span(begin, -1) if match.group(4) else None
        if preamble is None:
            found[qualified] = [span, *(p for *_, p in stack if p is not None)]
        stack.append((indent, qualified, span, preamble))
    for _, _, span, preamble in stack:
        span.end = len(text)
        if preamble is not None and preamble.end < 0:
            preamble.end = len(text)
    return found


def affinity(
    nodeids: Sequence[str], words: set[str], rootdir: Path, *, max_words: int = MAX_WORDS
) -> dict[str, float]:
    """Per test, how much of the change's ``words`` it names, from 0 to 1 (the best test); the
    tests that name none are left out.

    A word counts once per test, weighted by log(tests / tests naming it): a word every test
    names weighs nothing.
    """
    chosen = sorted(words, key=lambda w: (-len(w), w))[:max_words]
    if not chosen or not nodeids:
        return {}
    # An alternation on lower-cased text, longest words first; a word must end a word (or the
    # engine tries the shorter ones), its start is checked after: a look-behind and
    # IGNORECASE make the search about seven times slower.
    pattern = re.compile("(?:" + "|".join(map(re.escape, chosen)) + ")(?![a-z0-9])")
    vocabulary = frozenset(chosen)
    named: dict[str, set[str]] = {}
    by_file: dict[str, list[str]] = {}
    for nodeid in nodeids:
        by_file.setdefault(test_file(nodeid), []).append(nodeid)
        found = {word for _, word in _matches(nodeid.lower(), pattern, vocabulary)}
        if found:
            named[nodeid] = found
    for path, ids in by_file.items():
        for nodeid, found in _file_words(rootdir / path, ids, pattern, vocabulary).items():
            named.setdefault(nodeid, set()).update(found)
    return _scores(named, len(nodeids))


def _file_words(
    path: Path, nodeids: Sequence[str], pattern: re.Pattern[str], words: frozenset[str]
) -> dict[str, set[str]]:
    """The change's words each test of one file names in its text."""
    if path.suffix != ".py":
        return {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")  # for ranking, good enough
    except (OSError, ValueError):
        return {}
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer: offsets would move
        lowered, pattern = text, re.compile(pattern.pattern, re.IGNORECASE)
    matches = _matches("\n" + lowered, pattern, words)  # offsets as `spans` gives them
    if not matches:
        return {}
    positions = [at for at, _ in matches]
    where = spans(text)
    out: dict[str, set[str]] = {}
    for nodeid in nodeids:
        name = nodeid.split("::", 1)[1].split("[", 1)[0] if "::" in nodeid else ""
        found: set[str] = set()
        for span in where.get(name, ()):
            lo = bisect.bisect_left(positions, span.start)
            hi = bisect.bisect_left(positions, span.end)
            found.update(word for _, word in matches[lo:hi])
        if found:
            out[nodeid] = found
    return out


def _matches(
    lowered: str, pattern: re.Pattern[str], words: frozenset[str]
) -> list[tuple[int, str]]:
    """(offset, word) of each whole word of ``pattern`` in ``lowered``, and of the ``words``
    among the ``_``-separated parts of a match (``max_words`` names ``max`` and ``words``)."""
    out = []
    at = 0
    while (match := pattern.search(lowered, at)) is not None:
        start = match.start()
        if start == 0 or lowered[start - 1].lower() not in _WORD_CHAR:
            word = match.group().lower()
            out.append((start, word))
            if "_" in word:
                out.extend((start, part) for part in word.split("_") if part in words)
            at = match.end()
        else:  # inside a longer word: a whole word may still start within the match
            at = start + 1
    return out


def _scores(named: Mapping[str, set[str]], total: int) -> dict[str, float]:
    counts: dict[str, int] = {}
    for found in named.values():
        for word in found:
            counts[word] = counts.get(word, 0) + 1
    weight = {w: math.log(max(total, 1) / n) for w, n in counts.items()}
    # Summed in a fixed order and rounded: every xdist worker plans on its own, with its own
    # hash seed, and their plans must agree to the last test.
    raw = {nodeid: math.fsum(weight[w] for w in sorted(found)) for nodeid, found in named.items()}
    best = max(raw.values(), default=0.0)
    if best <= 0:
        return {}
    return {nodeid: round(score / best, 9) for nodeid, score in raw.items() if score > 0}
