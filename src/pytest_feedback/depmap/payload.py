"""What one process measured for the map, in plain types: `measure.Measurement` builds it,
xdist ships it from a worker to the controller, `depmap.store.write_map` writes it."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class MapPayload:
    """What one process measured, in plain types (execnet can ship dicts, lists, bytes)."""

    #: context label -> path -> coverage numbits of the executed lines ('' numbits: imported only)
    lines: dict[str, dict[str, bytes]] = dataclasses.field(default_factory=dict)
    #: context label -> paths read
    reads: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: context label -> [processes started that may run project code, of them measured]
    spawns: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    #: project path -> dotted module name, for resolving imports
    modules: dict[str, str] = dataclasses.field(default_factory=dict)
    #: [importer path, imported path] seen while importing
    edges: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: context label -> installed distributions it used (`dist_use`; ``import:NAME``: not found)
    dists: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: facts of the environment (`distributions.DistIndex.facts`): kind -> distribution names
    dist_facts: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> MapPayload:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def merge(self, other: MapPayload) -> None:
        """Fold another process's payload in (xdist workers collect the same modules)."""
        from coverage.numbits import numbits_union

        for label, files in other.lines.items():
            mine = self.lines.setdefault(label, {})
            for path, bits in files.items():
                mine[path] = numbits_union(mine[path], bits) if path in mine else bits
        for label, paths in other.reads.items():
            self.reads[label] = sorted({*self.reads.get(label, ()), *paths})
        for label, (spawned, measured) in other.spawns.items():
            old = self.spawns.get(label, [0, 0])
            self.spawns[label] = [old[0] + spawned, old[1] + measured]
        self.modules.update(other.modules)
        self.edges.extend(other.edges)
        self.notes.extend(n for n in other.notes if n not in self.notes)
        for label, names in other.dists.items():
            self.dists[label] = sorted({*self.dists.get(label, ()), *names})
        for kind, names in other.dist_facts.items():
            self.dist_facts[kind] = sorted({*self.dist_facts.get(kind, ()), *names})
