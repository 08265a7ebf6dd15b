"""The ``select`` subcommand of ``pytest-feedback``, and the selection part of ``why``.

The command line knows the tests the history and the map know; a test written since the last
recorded run appears only when pytest collects it (``pytest --feedback-select``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pytest_feedback.cli.common import add_db_option, add_output_option, db_path, output
from pytest_feedback.durations import parse_duration
from pytest_feedback.errors import FeedbackError
from pytest_feedback.selection.existing import gone_line, split_present
from pytest_feedback.selection.inputs import known_tests
from pytest_feedback.selection.selector import Selection, Selector, load_selector
from pytest_feedback.settings import DEFAULT_DB

if TYPE_CHECKING:
    from pytest_feedback.planning.budget import BudgetPlan


def add_select_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    select = sub.add_parser(
        "select",
        help="the tests the changes affect, one node id a line (a pytest @file), or json",
        description="The recorded tests the changes since the coverage map (or since "
        "merge-base(--base, HEAD)) affect. Tests written since the last recorded run are not "
        "known here; `pytest --feedback-select` selects them.",
    )
    add_db_option(select)
    select.add_argument("--base", metavar="REF", help="changes since merge-base(REF, HEAD) too")
    select.add_argument(
        "--budget",
        metavar="DURATION",
        help="of the tests, the ones most likely to fail that fit DURATION (5m, 300s, 1h30m), "
        "affected tests first, in the order to run them",
    )
    select.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="with --budget: plan for N parallel workers (pytest -n N)",
    )
    select.add_argument(
        "--format",
        choices=("list", "json"),
        default="list",
        help="list: one node id a line, a pytest @file (default); json: with the reasons",
    )
    add_output_option(select)
    add_rootdir_option(select)
    select.set_defaults(func=cmd_select)


def add_why_selection_options(why: argparse.ArgumentParser) -> None:
    """``why --base REF``: the selection decision against merge-base(REF, HEAD)."""
    why.add_argument("--base", metavar="REF", help="decide against merge-base(REF, HEAD) too")
    add_rootdir_option(why)


def add_rootdir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rootdir",
        metavar="DIR",
        help="the pytest rootdir the node ids are relative to (default: the one the history "
        "recorded, when it exists here; else the directory holding .pytest-feedback/)",
    )


def resolve_rootdir(args: argparse.Namespace, db: Path) -> Path:
    """Where the recorded paths are: --rootdir, the recorded rootdir, or the db's project."""
    if getattr(args, "rootdir", None):
        root = Path(args.rootdir)
        if not root.is_dir():
            raise FeedbackError(f"--rootdir {args.rootdir}: no such directory")
        return root.resolve()
    recorded = _recorded_rootdir(db)
    if recorded is not None and recorded.is_dir():
        return recorded
    if db.parent.name == DEFAULT_DB.parent.name:
        return db.parent.parent
    return Path.cwd()


def _recorded_rootdir(db: Path) -> Optional[Path]:
    from pytest_feedback.history.store import Store

    if not db.is_file():
        return None
    try:
        with Store(db, create=False, readonly=True) as store:
            runs = store.reads.runs(limit=1)
    except FeedbackError:
        return None
    if not runs or not runs[0].get("rootdir"):
        return None
    return Path(str(runs[0]["rootdir"]))


def _selector(args: argparse.Namespace) -> Selector:
    db = db_path(args)
    if not db.is_file():
        raise FeedbackError(
            f"no history at {db}; record one with `pytest --feedback-cov`, or point --db at it"
        )
    return load_selector(db, resolve_rootdir(args, db), getattr(args, "base", None))


def cmd_select(args: argparse.Namespace) -> int:
    """Print the selected node ids (list) or the decision with reasons (json)."""
    budget_s = parse_duration(args.budget, what="--budget") if args.budget else None
    if args.workers < 1:
        raise FeedbackError(f"--workers {args.workers}: pass a number of workers >= 1")
    selector = _selector(args)
    nodeids, gone = split_present(
        resolve_rootdir(args, db_path(args)), known_tests(selector.map, selector.estimates)
    )
    selection = selector.decide(nodeids)
    document = selection.to_json()
    chosen = list(selection.selected)
    line = selection.summary_line()
    if budget_s is not None:
        plan = budget_plan(args, selector, selection, budget_s)
        chosen = list(plan.chosen)
        document["selected"] = [
            {"nodeid": n, "reasons": selection.selected.get(n, [])} for n in chosen
        ]
        document["deselected"] = len(nodeids) - len(chosen)
        document["estimate_s"] = round(plan.predicted_s, 3)
        document["budget"] = plan.to_json()
        line = plan.summary_line()
    with output(args) as out:
        if args.format == "json":
            json.dump(document, out, indent=2)
            out.write("\n")
        else:
            for nodeid in chosen:
                out.write(nodeid + "\n")
    if selector.base_problem is not None and budget_s is not None:
        print(f"feedback: warning: {selector.base_problem}", file=sys.stderr)
    print(line, file=sys.stderr)
    if gone:
        print(gone_line(gone), file=sys.stderr)
    return 0


def budget_plan(
    args: argparse.Namespace, selector: Selector, selection: Selection, budget_s: float
) -> BudgetPlan:
    """The budget's plan over the tests the history knows: the selected ones are "affected";
    with a fallback (everything selected) the risk alone orders them."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.planning.budget import candidates_for, plan_budget
    from pytest_feedback.selection.affinity import change_affinity

    with Store.open_existing(db_path(args)) as store:
        runs_since = store.reads.runs_since()
    affected = None if selection.fallback is not None else set(selection.selected)
    lines = selector.own_changed_lines(list(affected or ()))
    nodeids = [*selection.selected, *selection.deselected]
    named = change_affinity(selector.changes, selector.rootdir, selector.map, nodeids)
    return plan_budget(
        candidates_for(nodeids, selector.estimates, runs_since, affected, lines, named),
        selector.estimates,
        budget_s,
        args.workers,
        affected_known=affected is not None,
    )


def why_selection(args: argparse.Namespace, nodeid: str) -> list[str]:
    """The selection decision for ``why``: selected because ..., or not selected because ..."""
    selector = _selector(args)
    if selector.fallback is not None:
        return [f"selected: everything runs: {selector.fallback}"]
    return selector.explain(nodeid)
