"""``pytest-feedback quarantine add|remove|list|suggest``: edit and read the quarantine file."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Optional

from pytest_feedback import quarantine
from pytest_feedback.cli.common import add_db_option, db_path
from pytest_feedback.errors import ConfigError, FeedbackError
from pytest_feedback.selection.existing import is_present


def add_quarantine_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "quarantine",
        help="tests whose failures do not fail the run: add, remove, list, suggest",
        description="Edit the quarantine file (commit it): a quarantined test still runs and is "
        "recorded, but its failure does not fail the session until the entry expires.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="quarantine a test (or change its entry)")
    add.add_argument("nodeid", help="the test's node id, as pytest prints it")
    add.add_argument("--reason", required=True, help="why (shown whenever a failure is absorbed)")
    add.add_argument("--owner", default="", help="who will fix it")
    add.add_argument(
        "--expires", metavar="DATE|Nd", help="last day it protects: YYYY-MM-DD, or 30d from today"
    )
    remove = actions.add_parser("remove", help="take a test out of quarantine")
    remove.add_argument("nodeid", help="the node id as the file lists it")
    listing = actions.add_parser("list", help="the quarantined tests, expired ones marked")
    listing.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )
    suggest = actions.add_parser(
        "suggest", help="tests the history shows flaky (with the evidence), not yet quarantined"
    )
    add_db_option(suggest)
    for each in (add, remove, listing, suggest):
        each.add_argument(
            "--file",
            metavar="PATH",
            help=f"the quarantine file (default: ini feedback_quarantine, else "
            f"{quarantine.DEFAULT_FILE} beside the project's pytest configuration)",
        )
        each.set_defaults(func=cmd_quarantine)


def quarantine_file(given: Optional[str], start: Path) -> Path:
    """``--file``, else the one the plugin reads: the ini's ``feedback_quarantine`` (relative to
    the configuration file) or the default name beside the nearest pytest configuration."""
    if given is not None:
        if not given.strip():
            raise FeedbackError("--file: empty path; give the quarantine file, or leave it out")
        return Path(given)
    directory, found = _nearest_configuration(start)
    return found if found is not None else quarantine.find_file(directory)


def _nearest_configuration(start: Path) -> tuple[Path, Optional[Path]]:
    """The directory of the nearest pytest configuration from ``start`` upward (the rootdir
    node ids are relative to) and its quarantine file; ``start`` and None when there is none."""
    here = start.resolve()
    for directory in (here, *here.parents):
        found = quarantine.configured_in(directory)
        if found is not None:
            return directory, found
    return here, None


def cmd_quarantine(args: argparse.Namespace) -> int:
    path = quarantine_file(args.file, Path.cwd())
    try:
        entries = quarantine.load(path)
        today = quarantine.today()
        if args.action == "add":
            _add(args, path, entries, today)
        elif args.action == "remove":
            if entries.pop(args.nodeid, None) is None:
                raise FeedbackError(
                    f"{args.nodeid!r} is not in {_shown(path)}; "
                    "`pytest-feedback quarantine list` shows what is"
                )
            quarantine.save(path, entries)
            print(f"removed {args.nodeid} from {_shown(path)}")
        elif args.action == "list":
            _list(entries, today, args.format)
        else:
            _suggest(args, entries)
    except ConfigError as exc:
        raise FeedbackError(str(exc)) from None
    return 0


def _add(
    args: argparse.Namespace,
    path: Path,
    entries: dict[str, quarantine.Entry],
    today: datetime.date,
) -> None:
    """Add (or update) an entry: a date already past is refused, an unknown test warned of,
    and an update keeps what it does not change (owner, the day it was added)."""
    expires = quarantine.expiry_date(args.expires, today) if args.expires else None
    if expires is not None and quarantine.parse_date(expires) < today:
        raise FeedbackError(
            f"--expires {args.expires}: {expires} is already past; give a later date, or a "
            "number of days such as 30d"
        )
    rootdir, _ = _nearest_configuration(Path.cwd())
    if not is_present(rootdir, args.nodeid):
        print(
            f"pytest-feedback: warning: {args.nodeid} is not a test under {rootdir} (its file "
            "is missing or does not name it); check the node id with `pytest --collect-only -q`",
            file=sys.stderr,
        )
    before = entries.get(args.nodeid)
    entries[args.nodeid] = quarantine.Entry(
        args.nodeid,
        args.reason,
        args.owner or (before.owner if before else ""),
        before.added if before else today.isoformat(),
        expires if expires is not None or before is None else before.expires,
    )
    quarantine.save(path, entries)
    entry = entries[args.nodeid]
    until = f" until {entry.expires}" if entry.expires else ""
    owner = f", owner {entry.owner}" if entry.owner else ""
    verb = "updated the entry of" if before else "quarantined"
    print(f"{verb} {args.nodeid}{until}{owner} in {_shown(path)}")


def _list(entries: dict[str, quarantine.Entry], today: datetime.date, form: str) -> None:
    if form == "json":
        print(json.dumps([e.to_json() for e in entries.values()], indent=2))
        return
    if not entries:
        print("no test is quarantined")
        return
    for entry in sorted(entries.values(), key=lambda e: e.nodeid):
        state = "EXPIRED " if entry.expired(today) else ""
        until = f", until {entry.expires}" if entry.expires else ""
        owner = f", owner {entry.owner}" if entry.owner else ""
        print(f"{state}{entry.nodeid}: {entry.reason} (added {entry.added}{owner}{until})")


def _suggest(args: argparse.Namespace, entries: dict[str, quarantine.Entry]) -> None:
    from pytest_feedback.history.store import Store
    from pytest_feedback.report.flaky import flaky_tests

    with Store.open_existing(db_path(args)) as store:
        known = flaky_tests(store)
    found = [f for f in known if f.nodeid not in entries]
    if not found:
        if known:
            many = len(known) != 1
            print(
                f"no candidate: the {len(known)} test{'s' * many} the history shows flaky on "
                f"evidence {'are' if many else 'is'} quarantined already "
                "(`pytest-feedback quarantine list`)"
            )
        else:
            print("no candidate: no test of the history is flaky on evidence (docs/flaky.md)")
        return
    for flaky in found:
        print(f"{flaky.nodeid}: {flaky.evidence.describe()}; fail rate {flaky.fail_rate:.0%}")
    print(
        "quarantine one with: pytest-feedback quarantine add NODEID --reason TEXT --expires 30d",
    )


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
