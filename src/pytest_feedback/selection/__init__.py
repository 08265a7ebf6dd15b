"""Which tests a change affects (docs/selection.md).

`changes` finds the changed files and lines (from the map's snapshots and git); `narrowing`
proves some import-time edits narrower than "every user of the module"; `inputs` reads what the
selector needs; `selector` applies the rules and keeps each decision's reasons; `affinity` scores
how much of a change each test's text names (the budget's ranking).
"""
