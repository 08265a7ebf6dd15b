"""An in-memory coverage map with the `select.MapView` interface, for unit tests."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Optional


@dataclasses.dataclass
class FakeDeps:
    files: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    reads: set[str] = dataclasses.field(default_factory=set)
    spawns: bool = False
    import_time: set[str] = dataclasses.field(default_factory=set)
    collection_time: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class FakeMap:
    """Tests -> (file -> executed lines); ``import_lines`` marks a module's import-time lines."""

    deps: dict[str, FakeDeps] = dataclasses.field(default_factory=dict)
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    import_lines: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def mapped_tests(self) -> set[str]:
        return set(self.deps)

    def spawning_tests(self) -> set[str]:
        return {n for n, d in self.deps.items() if d.spawns}

    def recorded_files(self) -> dict[str, str]:
        return {p: hashlib.sha1(t.encode()).hexdigest() for p, t in self.sources.items()}

    def recorded_source(self, path: str) -> Optional[str]:
        return self.sources.get(path)

    def tests_reaching(self, path: str, lines: Optional[set[int]] = None) -> dict[str, str]:
        out: dict[str, str] = {}
        imported = lines is not None and bool(lines & self.import_lines.get(path, set()))
        for nodeid, d in self.deps.items():
            if path in d.reads:
                out[nodeid] = "reads"
            elif path in d.files and (lines is None or d.files[path] & lines):
                out[nodeid] = "executed"
            elif imported and path in d.import_time:
                out[nodeid] = "import-time"
        return out

    def dependencies(self, nodeid: str) -> Optional[FakeDeps]:
        return self.deps.get(nodeid)

    def outdated_tests(self) -> set[str]:
        return set()

    def environment(self) -> dict[str, str]:
        return dict(self.env)
