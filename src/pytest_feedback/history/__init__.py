"""The history: one SQLite file that every run is recorded into (docs/history-schema.md).

`connection` wraps the SQLite connection (pragmas, retries, transactions); `schema` holds the
tables, the schema versions and the numbered migrations; `store` opens a history and records a
run; `reads` and `writes` are its queries; `records` is the data of one run as the recorder
builds it; `summaries` computes the per-test and per-fixture aggregates on write; `estimates` is
the read model every planner uses; `merge`, `merge_inputs` and `merge_stats` combine histories;
`junit` imports JUnit XML reports. Nothing here imports pytest.
"""
