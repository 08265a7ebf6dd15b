"""Plans from the history's estimates, under one cost model (docs/contract.md, "Cost model").

`planners/` places work on N processes (the cost model, LPT, local search); `shards` is their
public face (shard plans, the worker curve); `costs` and `budget` choose the tests that fit a time
budget, `pacer` keeps a running budget on time; `timings` compares predicted with measured time
per process.
"""
