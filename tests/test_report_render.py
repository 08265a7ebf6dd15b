"""Report rendering: text into a string console, markdown through a parser, json keys."""

from __future__ import annotations

import io
import json

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.console import Console

from pytest_feedback.history.estimates import FixtureEstimate, TestEstimate
from pytest_feedback.report import json as json_report
from pytest_feedback.report import markdown, text
from pytest_feedback.report.formatting import UNKNOWN
from pytest_feedback.report.model import Report, RunSummary, TestRow, file_rows, file_totals

HOSTILE = [
    "tests/test_a.py::test_pipe[a|b]",
    "tests/test_a.py::test_html[<script>alert(1)</script>]",
    "tests/test_a.py::test_ticks[`x` and ``y``]",
    "tests/test_a.py::test_newline[a\nb\r\nc]",
    "tests/test_a.py::test_unicode[日本語-é-😀]",
    "tests/test_a.py::test_bidi[\u202egnp.exe\u200b]",
    "tests/test_a.py::test_markup[[bold]x[/bold] *em* _u_ $x$ :tada: [l](http://e.com)]",
    "`tests/edge.py::starts_with_backtick`",
    "tests/test_a.py::test_backslash[a\\|b\\]",
    "tests/test_a.py::test_amp[&lt;b&gt; &amp;]",
]


def est(
    nodeid: str,
    seconds: float,
    *,
    fail_rate: float = 0.0,
    flaky: bool = False,
    slowdown: float = 1.0,
    last: str = "passed",
) -> TestEstimate:
    return TestEstimate(
        nodeid,
        seconds,
        0.1 * seconds,
        0.8 * seconds,
        0.1 * seconds,
        5,
        fail_rate,
        flaky,
        slowdown,
        last,
    )


def sample_report(nodeids: list[str] | None = None) -> Report:
    slow = est(
        "tests/test_api.py::TestOrders::test_checkout_with_many_items[postgres-large]",
        3.2,
        slowdown=3.0,
    )
    flaky = est("tests/test_net.py::test_retry", 0.4, fail_rate=0.5, flaky=True, last="failed")
    fast = est("tests/test_api.py::test_ping", 0.01)
    tests = [slow, flaky, fast]
    extra = [est(n, 0.1, flaky=True, slowdown=2.0) for n in nodeids or []]
    slow_row = TestRow(slow, (0.2, 3.0, 0.2), (1.0, 1.1, 0.9, 3.1, 3.2, 3.4), "......", 1.0, 3.2)
    flaky_row = TestRow(flaky, None, (0.4, 0.4, 0.4, 0.4), ".F.F", None, None)
    fast_row = TestRow(fast, (0.0, 0.01, 0.0), (0.01,), ".", None, None)
    extra_rows = [TestRow(e, (0.0, 0.1, 0.0), (0.1,), ".", None, None) for e in extra]
    return Report(
        runs=6,
        last_run=RunSummary(6, 1_700_000_000.0, 12.5, 3, 1, 2, 20.0, "0123456789abcdef", False),
        test_count=len(tests + extra),
        total_estimate_s=sum(t.estimate_s for t in tests + extra),
        tests=tests + extra,
        slowest=[slow_row, flaky_row, fast_row, *extra_rows],
        fixtures=[
            FixtureEstimate("database", "session", "tests/conftest.py::database", 2.0, 0.5, 2, 40),
            FixtureEstimate("client", "function", "tests/conftest.py::client", 0.01, 0.0, 120, 120),
        ],
        files=file_rows(file_totals(tests + extra)),
        slowed_down=[slow_row, *extra_rows],
        flaky=[flaky_row, *extra_rows],
        hint="",
        top=20,
    )


EXPECTED_TEXT = """\
Last run: run 6 · 2023-11-14 22:13 UTC · commit 0123456789
  3 tests, 1 failed · wall 12s · test time 20s
  2 xdist workers · parallel efficiency 80%
History: 6 runs · 3 tests · expected test time 3.61s

Slowest tests (of 3)
test                                              estimate   this run    set/call/tear   trend
───────────────────────────────────────────────────────────────────────────────────────────────
tests/test_api.py::TestOrders::                      3.20s      3.40s   0.20/3.00/0.20   ▃▃▃▇██
  test_checkout_with_many_items[postgres-large]
tests/test_net.py::test_retry                        0.40s          ~                ~   ████
tests/test_api.py::test_ping                         0.01s      0.01s   0.00/0.01/0.00   █

Slowest fixtures (of 2, by cost per run)
fixture            scope      per exec   execs/run   per run   used by
──────────────────────────────────────────────────────────────────────
database           session       2.50s           2     5.00s        40
client             function      0.01s         120     1.20s       120

Slowest files (of 2)
file                tests   estimate   share
────────────────────────────────────────────
tests/test_api.py       2      3.21s     89%
tests/test_net.py       1      0.40s     11%

Slowed down (1: recent runs against their history)
test                                              before   recent   slower   trend
───────────────────────────────────────────────────────────────────────────────────
tests/test_api.py::TestOrders::                    1.00s    3.20s     3.0x   ▃▃▃▇██
  test_checkout_with_many_items[postgres-large]

Flaky (1: passed and failed with no code change between)
test                            fail rate   runs   last     outcomes
────────────────────────────────────────────────────────────────────
tests/test_net.py::test_retry         50%      5   failed   .F.F
"""


def render_text(report: Report, width: int = 100, **kwargs: object) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    text.render(report, console, **kwargs)  # type: ignore[arg-type]
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in output.splitlines()) + "\n"


def test_text_report() -> None:
    # "~" stands for the en dash of an unknown figure (kept out of the source for ruff).
    assert render_text(sample_report()) == EXPECTED_TEXT.replace("~", UNKNOWN)


def test_text_report_fits_80_columns() -> None:
    output = render_text(sample_report(HOSTILE), width=80)
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "Slowest tests (of 13)" in output


def test_text_report_shows_hostile_node_ids_literally() -> None:
    output = render_text(sample_report(HOSTILE), width=200)
    assert "test_markup[[bold]x[/bold] *em*" in output  # not rich markup
    assert "test_newline[a\\x0ab\\x0d\\x0ac]" in output  # one row, the newline visible
    assert "test_bidi[\\u202egnp.exe\\u200b]" in output
    assert "test_unicode[日本語-é-😀]" in output


def test_text_report_does_not_read_history_text_as_markup() -> None:
    report = sample_report()
    weird = FixtureEstimate("[red]f", "[bold]module", "c.py::f", 1.0, 0.0, 1, 1)
    report = Report(**{**report.__dict__, "fixtures": [weird]})
    assert "[red]f             [bold]module      1.00s" in render_text(report)


def test_text_report_in_ascii() -> None:
    output = render_text(sample_report(), ascii_only=True)
    assert output.isascii()
    assert "test_retry                        0.40s          -" in output
    assert "--------" in output


def test_text_report_colours_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    text.render(sample_report(), text.make_console(out, width=100, color=True))
    assert "\x1b[1m" in out.getvalue()
    out = io.StringIO()
    text.render(sample_report(), text.make_console(out, width=100))
    assert "\x1b" not in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    text.render(sample_report(), text.make_console(out, width=100, color=True))
    assert "\x1b" not in out.getvalue()


def test_text_report_of_an_empty_history() -> None:
    empty = Report(0, None, 0, 0.0, [], [], [], [], [], [], "", 10)
    assert render_text(empty) == "No runs recorded yet; run `pytest --feedback`.\n"


def test_text_report_shows_the_planner_hint() -> None:
    report = sample_report()
    hinted = Report(**{**report.__dict__, "hint": "4 shards of ~1m12s"})
    assert render_text(hinted).endswith("\nPlan: 4 shards of ~1m12s\n")
    assert "Plan:" not in render_text(report)


# -- markdown ----------------------------------------------------------------------------------


def parse(source: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(source)


def tables(tokens: list[Token]) -> list[list[list[Token]]]:
    """Each table as rows of cells, each cell the list of its inline children."""
    out: list[list[list[Token]]] = []
    row: list[list[Token]] = []
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            out.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            inline = tokens[index + 1]
            row.append(list(inline.children or []) if inline.type == "inline" else [])
        elif token.type == "tr_close":
            out[-1].append(row)
    return out


def test_markdown_tables_survive_hostile_node_ids() -> None:
    source = markdown.render(sample_report(HOSTILE))
    tokens = parse(source)
    everything = [*tokens, *(c for t in tokens for c in (t.children or []))]
    assert not [t for t in everything if t.type in ("html_inline", "html_block")]
    cells = [c for table in tables(tokens) for row in table for cell in row for c in cell]
    assert {t.type for t in cells} <= {"text", "code_inline"}

    parsed = tables(tokens)
    assert len(parsed) == 5  # slowest tests, fixtures, files, slowed down, flaky
    for table in parsed:
        widths = {len(row) for row in table}
        assert len(widths) == 1, widths  # every row has the header's cell count
    slowest, _, files, slowed, flaky = parsed
    assert len(slowest) == 1 + 3 + len(HOSTILE)
    assert len(slowed) == 1 + 1 + len(HOSTILE)
    assert len(flaky) == 1 + 1 + len(HOSTILE)
    shown = [row[0] for row in slowest[4:]]
    for nodeid, cell in zip(HOSTILE, shown):
        assert [t.type for t in cell] == ["code_inline"], (nodeid, cell)
        expected = nodeid.replace("\n", "\\x0a").replace("\r", "\\x0d")
        expected = expected.replace("\u202e", "\\u202e").replace("\u200b", "\\u200b")
        assert cell[0].content == expected
    assert "`tests/edge.py" in [row[0][0].content for row in files[1:]]


def test_markdown_plain_text_escapes_everything() -> None:
    tokens = parse(f"| a |\n| --- |\n| {markdown.plain('<b>*x*</b> | `y` [z](u)')} |\n")
    (table,) = tables(tokens)
    cell = table[1][0]
    assert [t.type for t in cell] == ["text"]
    assert cell[0].content == "<b>*x*</b> | `y` [z](u)"


def test_markdown_report_layout() -> None:
    source = markdown.render(sample_report())
    assert source.startswith("## pytest-feedback report\n\n**Last run:** run 6 · 2023-11-14")
    assert "| test | estimate | this run | set-up / call / tear-down | trend |" in source
    assert "| ` tests/test_net.py::test_retry ` | 50% | 5 | failed | ` .F.F ` |" in source
    assert "### Slowed down (1: recent runs against their history)" in source


# -- json --------------------------------------------------------------------------------------


def test_json_follows_the_design_contract() -> None:
    data = json.loads(json_report.render(sample_report()))
    assert data["version"] == 1
    assert data["runs"] == 6
    assert {"wall_s", "tests", "failed", "workers"} <= set(data["last_run"])
    assert data["last_run"]["workers"] == 2
    test_keys = {"nodeid", "estimate_s", "setup_s", "call_s", "teardown_s", "runs"}
    test_keys |= {"fail_rate", "flaky"}
    for test in data["tests"]:
        assert test_keys <= set(test)
    estimates = [t["estimate_s"] for t in data["tests"]]
    assert estimates == sorted(estimates, reverse=True)
    fixture_keys = {"name", "scope", "setup_s", "teardown_s", "executions", "used_by"}
    for fixture in data["fixtures"]:
        assert fixture_keys <= set(fixture)
    assert [f["name"] for f in data["fixtures"]] == ["database", "client"]
    assert data["flaky"] == ["tests/test_net.py::test_retry"]
    assert data["slowed_down"][0]["slowdown"] == 3.0


def test_json_top_and_infinite_slowdowns() -> None:
    report = sample_report()
    zero_before = est("t.py::was_instant", 1.0, slowdown=float("inf"))
    report = Report(**{**report.__dict__, "tests": [zero_before, *report.tests]})
    data = json.loads(json_report.render(report, top=1))
    assert [t["nodeid"] for t in data["tests"]] == ["t.py::was_instant"]
    assert data["tests"][0]["slowdown"] is None
    assert len(data["fixtures"]) == 1


def test_empty_history_in_markdown_and_json() -> None:
    empty = Report(0, None, 0, 0.0, [], [], [], [], [], [], "", 10)
    assert "No runs recorded yet" in markdown.render(empty)
    data = json.loads(json_report.render(empty))
    assert data["last_run"] is None
    assert data["tests"] == data["fixtures"] == []


def test_a_budget_runs_figures_compare_its_prediction_with_its_time() -> None:
    from pytest_feedback.report.formatting import run_figures
    from pytest_feedback.report.model import RunSummary

    plain = RunSummary(6, 1_700_000_000.0, 12.5, 3, 0, 0, 10.0)
    assert len(run_figures(plain)) == 2
    timed = RunSummary(6, 1_700_000_000.0, 12.5, 3, 0, 0, 10.0, budget_s=300.0, predicted_s=281.0)
    assert run_figures(timed)[2] == "budget 5m · predicted 4m41s"
    exited = RunSummary(
        6, 1_700_000_000.0, 12.5, 3, 0, 0, 10.0,
        budget_s=300.0, predicted_s=281.0, took_s=298.0, to_exit=True,
    )  # fmt: skip
    assert run_figures(exited)[2] == "budget 5m · predicted 4m41s · took 4m58s"


def test_a_budget_runs_time_includes_its_exit_when_it_was_timed() -> None:
    from pytest_feedback.report.model import _budget_figures

    assert _budget_figures({"budget_s": None}) == {}
    assert _budget_figures({}) == {}  # a history from before the budget columns
    row = {"budget_s": 300.0, "predicted_s": 281.0, "took_s": 297.5, "exit_s": 0.5}
    assert _budget_figures(row) == {
        "budget_s": 300.0, "predicted_s": 281.0, "took_s": 298.0, "to_exit": True,
    }  # fmt: skip
    row["exit_s"] = None
    assert _budget_figures(row)["took_s"] == 297.5
    assert _budget_figures(row)["to_exit"] is False
