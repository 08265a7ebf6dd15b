"""The dependency map: which tests reach which files, lines and functions (docs/coverage-map.md).

`measure` runs one coverage.py measurement with a context per test, collector and import
(`imports` watches imports, `access` the files a context reads, `children` its Python child
processes); `coverage_internals` is the one module that touches coverage.py's private parts;
`payload` is what a run measured; `store` writes and reads the ``map_*`` tables; `graph` answers
the queries; `source` is what `ast` says of a file; `environment` is the fingerprint a map was
recorded in; `views` renders ``why`` and ``deps``. Nothing here imports pytest: the pytest side is
`session.mapping`.
"""
