"""The dependency map: which tests reach which files, lines and functions (queries).

Built from the ``map_*`` tables (`store.read_map`). Three kinds of contexts hold lines: a
test's own phases, the collection of a collector (governs every test below its node id), and the
import of a project module (reaches every test that *uses* the module). A test uses a module when
the module is in the import closure of the test's own file, the conftest.py files above it, or a
file the test executed; the import graph joins the edges seen at run time with the imports `ast`
finds in each file.

Line numbers are in the recorded content of each file (`recorded_source`). Everything is decoded
lazily, so loading the map of a large suite for one query stays cheap.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional

from coverage.numbits import numbits_to_nums

from pytest_feedback.depmap.source import Block, functions
from pytest_feedback.depmap.store import MapReader, read_map

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store

#: Reason kinds of `DependencyMap.tests_reaching`, strongest first.
EXECUTED = "executed"
IMPORT_TIME = "import-time"
COLLECTION_TIME = "collection-time"
READS = "reads"
_RANK = {EXECUTED: 0, IMPORT_TIME: 1, COLLECTION_TIME: 2, READS: 3}


@dataclasses.dataclass
class TestDeps:
    """What one test depends on."""

    files: dict[str, set[int]]  # path -> lines executed (all kinds merged)
    reads: set[str]  # non-Python files read
    spawns: bool  # ran child processes we could not measure
    import_time: set[str]  # modules whose import-time code it depends on
    collection_time: set[str]  # test modules / conftests whose collection it depends on
    # Additive (see MAP_INTERFACE.md):
    own_files: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    spawned: int = 0  # processes started that may run project code
    measured: int = 0  # of them, measured
    outdated: bool = False  # a file it reached changed in a later partial run
    #: installed distributions it used (and ``import:NAME``: looked for, not installed)
    dists: set[str] = dataclasses.field(default_factory=set)

    __test__ = False


def governs(collector: str, nodeid: str) -> bool:
    """Whether the collection of ``collector`` (a node id, '' the session) precedes ``nodeid``."""
    return (
        not collector
        or nodeid == collector
        or nodeid.startswith((collector + "/", collector + "::"))
    )


def test_file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class DependencyMap:
    """Queries over a recorded coverage map."""

    def __init__(self, reader: MapReader) -> None:
        self._raw = reader
        self._file_id = {path: row[0] for path, row in reader.files.items()}
        self._path = {row[0]: path for path, row in reader.files.items()}
        self._tests: dict[str, int] = {}
        self._collectors: dict[str, int] = {}
        self._imports: dict[str, int] = {}  # module path -> import context id
        for context_id, (kind, label, *_rest) in reader.contexts.items():
            {"t": self._tests, "c": self._collectors, "i": self._imports}.get(kind, {})[label] = (
                context_id
            )
        self._import_graph: Any = None
        self._by_test_file: Optional[dict[str, list[str]]] = None
        self._conftest_cache: dict[str, set[str]] = {}
        self._closure_cache: dict[str, set[str]] = {}

    @classmethod
    def load(cls, store: Store) -> Optional[DependencyMap]:
        """The map in ``store``; None when no map was ever recorded."""
        raw = read_map(store)
        return None if raw is None else cls(raw)

    # -- the contract ------------------------------------------------------------------------

    def mapped_tests(self) -> set[str]:
        return set(self._tests)

    def spawning_tests(self) -> set[str]:
        """Tests that started processes that may run project code and were not all measured."""
        return {
            label
            for label, context_id in self._tests.items()
            if self._raw.contexts[context_id][2] > self._raw.contexts[context_id][3]
        }

    def starting_tests(self) -> set[str]:
        """Tests that started processes that may run project code (measured or not)."""
        return {label for label, c in self._tests.items() if self._raw.contexts[c][2]}

    def outdated_tests(self) -> set[str]:
        """Tests whose map predates a change (recorded by a later partial run) they reached."""
        out: set[str] = set()
        for label, context_id in self._tests.items():
            if self._raw.contexts[context_id][4]:
                out.add(label)
        for label, context_id in self._collectors.items():
            if self._raw.contexts[context_id][4]:
                out.update(t for t in self._tests if governs(label, t))
        for path, context_id in self._imports.items():
            if self._raw.contexts[context_id][4]:
                out.update(self._tests_using(path))
        return out

    def environment(self) -> dict[str, str]:
        """The Python version, installed packages and project-wide inputs the map was recorded
        with (`environment.fingerprint`); {} for a map recorded before they were kept."""
        return dict(self._raw.environment)

    def recorded_files(self) -> dict[str, str]:
        return {path: row[1] for path, row in self._raw.files.items()}

    def recorded_source(self, path: str) -> Optional[str]:
        row = self._raw.files.get(path)
        return None if row is None else self._raw.source(row[0])

    def tests_reaching(self, path: str, lines: Optional[set[int]] = None) -> dict[str, str]:
        """Node id -> reason kind of every test that reaches ``path`` (or those of its lines)."""
        found: dict[str, str] = {}

        def add(nodeids: Iterable[str], kind: str) -> None:
            for nodeid in nodeids:
                old = found.get(nodeid)
                if old is None or _RANK[kind] < _RANK[old]:
                    found[nodeid] = kind

        file_id = self._file_id.get(path)
        if file_id is None:
            return found
        for context_id, bits in self._raw.lines_of_file(file_id):
            if lines is not None and not lines.intersection(numbits_to_nums(bits)):
                continue
            kind, label = self._raw.contexts[context_id][:2]
            if kind == "t":
                add([label], EXECUTED if bits or lines is not None else IMPORT_TIME)
            elif kind == "c":
                add(self._governed(label), COLLECTION_TIME)
            elif kind == "i":
                add(self._tests_using(label), self._import_kind(label))
        toplevel = self._raw.files[path][2]
        if lines is None or (toplevel and lines.intersection(numbits_to_nums(toplevel))):
            add(self._tests_using(path), self._import_kind(path))
        if lines is None:
            for context_id in self._raw.reads_of_file(file_id):
                kind, label = self._raw.contexts[context_id][:2]
                if kind == "t":
                    add([label], READS)
                elif kind == "c":
                    add(self._governed(label), READS)
                elif kind == "i":
                    add(self._tests_using(label), READS)
        return found

    def _import_kind(self, path: str) -> str:
        """Importing a test module or a conftest.py is collecting it."""
        if posixpath.basename(path) == "conftest.py" or path in self._tests_by_file():
            return COLLECTION_TIME
        return IMPORT_TIME

    def own_lines_in(
        self, nodeids: Sequence[str], paths: Iterable[str]
    ) -> dict[str, dict[str, set[int]]]:
        """The lines each test itself executed in ``paths`` (not import or collection time).

        One query for all tests, and only the wanted files' line sets decoded: what
        `dependencies` would give for those files' own lines, at a fraction of its cost.
        """
        wanted = {self._file_id[p]: p for p in paths if p in self._file_id}
        ids = {self._tests[n]: n for n in nodeids if n in self._tests}
        out: dict[str, dict[str, set[int]]] = {}
        if not wanted or not ids:
            return out
        for context_id, file_id, bits in self._raw.lines_of_contexts(sorted(ids)):
            path = wanted.get(file_id)
            if path is not None:
                out.setdefault(ids[context_id], {})[path] = set(numbits_to_nums(bits))
        return out

    def dependencies(self, nodeid: str) -> Optional[TestDeps]:
        context_id = self._tests.get(nodeid)
        if context_id is None:
            return None
        _kind, _label, spawned, measured, outdated = self._raw.contexts[context_id]
        own = self._lines_of([context_id]).get(context_id, {})
        test_file = test_file_of(nodeid)
        collection = self._conftests_of(test_file)
        if test_file in self._file_id:
            collection.add(test_file)
        used = self._uses(nodeid, own)
        others = [c for label, c in self._collectors.items() if governs(label, nodeid)]
        others += [self._imports[m] for m in used if m in self._imports]
        files = {path: set(lines) for path, lines in own.items()}
        for more in self._lines_of(others).values():
            _merge(files, more)
        reads = {
            self._path[file_id]
            for _context, file_id in self._raw.reads_of_contexts([context_id, *others])
        }
        outdated = outdated or any(self._raw.contexts[c][4] for c in others)
        dists = {dist for _c, dist in self._raw.dists_of_contexts([context_id, *others])}
        return TestDeps(
            files=files,
            reads=reads,
            spawns=spawned > measured,
            import_time={m for m in used if self._import_kind(m) == IMPORT_TIME},
            collection_time=collection,
            own_files=own,
            spawned=spawned,
            measured=measured,
            outdated=bool(outdated),
            dists=dists,
        )

    def tests_using_dists(self, dists: Iterable[str]) -> dict[str, set[str]]:
        """Node id -> which of ``dists`` (map_dists values) it used: in its own run, while
        pytest collected it, or while a module it uses was imported."""
        found: dict[str, set[str]] = {}
        using: dict[str, set[str]] = {}
        for context_id, dist in self._raw.contexts_using(sorted(set(dists))):
            kind, label = self._raw.contexts[context_id][:2]
            if kind == "t":
                nodeids: Iterable[str] = [label] if label in self._tests else []
            elif kind == "c":
                nodeids = self._governed(label)
            elif kind == "i":
                if label not in using:
                    using[label] = self._tests_using(label)
                nodeids = using[label]
            else:
                continue
            for nodeid in nodeids:
                found.setdefault(nodeid, set()).add(dist)
        return found

    # -- functions ---------------------------------------------------------------------------

    def functions(self, path: str) -> list[Block]:
        """The functions of a recorded Python file, with their recorded line spans."""
        source = self.recorded_source(path)
        return functions(source) if source is not None and path.endswith(".py") else []

    def function_lines(self, path: str, qualname: str) -> Optional[set[int]]:
        """The lines of a function's body (its ``def`` line runs at import: not included)."""
        for block in self.functions(path):
            if block.qualname == qualname:
                return set(range(block.body_start, block.end + 1))
        return None

    def tests_reaching_function(self, path: str, qualname: str) -> dict[str, str]:
        lines = self.function_lines(path, qualname)
        return {} if lines is None else self.tests_reaching(path, lines)

    def graph(self) -> Any:
        """The whole map as a networkx DiGraph: test -> function -> file, test -> file, imports.

        Nodes are tuples: ``("test", nodeid)``, ``("file", path)``,
        ``("function", path, qualname)``; a test -> file edge carries the executed ``lines``.
        """
        import networkx as nx

        from pytest_feedback.depmap.source import innermost_function

        graph = nx.DiGraph()
        blocks = {path: self.functions(path) for path in self._raw.files}
        for nodeid in self._tests:
            deps = self.dependencies(nodeid)
            assert deps is not None
            test = ("test", nodeid)
            graph.add_node(test)
            for path, lines in deps.files.items():
                graph.add_edge(test, ("file", path), lines=lines)
                for line in lines:
                    block = innermost_function(blocks.get(path, []), line)
                    if block is not None:
                        function = ("function", path, block.qualname)
                        graph.add_edge(test, function)
                        graph.add_edge(function, ("file", path))
            for path in deps.reads:
                graph.add_edge(test, ("file", path), read=True)
        for importer, imported in self._raw.imports:
            graph.add_edge(("file", self._path[importer]), ("file", self._path[imported]))
        return graph

    # -- internals ---------------------------------------------------------------------------

    def _lines_of(self, context_ids: list[int]) -> dict[int, dict[str, set[int]]]:
        """context id -> path -> lines."""
        out: dict[int, dict[str, set[int]]] = {}
        for context_id, file_id, bits in self._raw.lines_of_contexts(context_ids):
            out.setdefault(context_id, {})[self._path[file_id]] = set(numbits_to_nums(bits))
        return out

    def _imports_graph(self) -> Any:
        if self._import_graph is None:
            import networkx as nx

            graph = nx.DiGraph()
            graph.add_nodes_from(self._path.values())
            graph.add_edges_from((self._path[a], self._path[b]) for a, b in self._raw.imports)
            self._import_graph = graph
        return self._import_graph

    def _conftests_of(self, test_file: str) -> set[str]:
        """The conftest.py files in the test file's directory and above it."""
        directory = posixpath.dirname(test_file)
        cached = self._conftest_cache.get(directory)
        if cached is None:
            cached = set()
            for path in self._file_id:
                if posixpath.basename(path) == "conftest.py":
                    folder = posixpath.dirname(path)
                    if not folder or directory == folder or directory.startswith(folder + "/"):
                        cached.add(path)
            self._conftest_cache[directory] = cached
        return set(cached)

    def _roots(self, nodeid: str, own: dict[str, set[int]]) -> set[str]:
        test_file = test_file_of(nodeid)
        return {test_file, *self._conftests_of(test_file), *own}

    def _uses(self, nodeid: str, own: dict[str, set[int]]) -> set[str]:
        """The import closure of the test's file, its conftests and the files it executed."""
        import networkx as nx

        graph = self._imports_graph()
        used: set[str] = set()
        for root in self._roots(nodeid, own):
            if root not in graph:
                continue
            closure = self._closure_cache.get(root)
            if closure is None:
                closure = self._closure_cache[root] = {root, *nx.descendants(graph, root)}
            used.update(closure)
        return used

    def _tests_using(self, module: str) -> set[str]:
        """Tests whose import closure holds ``module``."""
        import networkx as nx

        graph = self._imports_graph()
        if module not in graph:
            return set()
        importers = {module, *nx.ancestors(graph, module)}
        out: set[str] = set()
        by_file = self._tests_by_file()
        touching = self._raw.contexts_touching([self._file_id[p] for p in importers])
        for context_id in touching:
            kind, label = self._raw.contexts[context_id][:2]
            if kind == "t":
                out.add(label)
        for path in importers:
            out.update(by_file.get(path, ()))
            if posixpath.basename(path) == "conftest.py":
                folder = posixpath.dirname(path)
                for test_file, nodeids in by_file.items():
                    if not folder or test_file.startswith(folder + "/"):
                        out.update(nodeids)
        return out

    def _tests_by_file(self) -> dict[str, list[str]]:
        if self._by_test_file is None:
            self._by_test_file = {}
            for nodeid in self._tests:
                self._by_test_file.setdefault(test_file_of(nodeid), []).append(nodeid)
        return self._by_test_file

    def _governed(self, collector: str) -> list[str]:
        return [nodeid for nodeid in self._tests if governs(collector, nodeid)]


def _merge(into: dict[str, set[int]], more: dict[str, set[int]]) -> None:
    for path, lines in more.items():
        into.setdefault(path, set()).update(lines)
