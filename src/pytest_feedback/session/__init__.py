"""The pytest side: the objects `plugin.py` registers when their option is on.

`options` reads options, ini and environment into settings; `keys` is how these objects find each
other (stash keys, the collection-filter protocol); `probe` times fixtures and phases where tests
run, `recorder` assembles the run, `writer` stores it; `mapping` drives the coverage map;
`selection`, `budget` and `parallel` (shards, ``--feedback-dist``) narrow the collection and
`scheduler` drives xdist; `collection_line` reports their decisions; `exitwatch` times the
process's exit; `report` prints ``--feedback-report``.
"""
