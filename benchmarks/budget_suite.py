"""A generated project whose full serial run takes minutes: the suite `budget.py` needs.

The real corpora run in seconds, so a budget of a tenth of them is mostly interpreter start-up.
`--feedback-budget` is meant for suites of minutes; this module writes one, deterministically from
a seed, as its own git repository (selection diffs against HEAD):

- ``shop/``: 13 modules in three layers (``money``, ``tax``, ... at the bottom; ``pricing``,
  ``shipping``, ... calling them; ``orders``, ``checkout``, ... on top), each with module
  constants used by its functions, six functions (int, list, bool and str results, with
  comparisons, default arguments and single-line statements) and a class with class attributes:
  every construct `selection.mutations_of` mutates;
- ``tests/``: about 650 tests in 32 modules (unit modules per shop module, parametrized "cases"
  modules, modules with their own module-scoped ``database`` fixture, API modules using a
  module-scoped ``server`` and flows using the session ``warehouse`` of ``conftest.py``, small
  function fixtures). A test calls 1-3 shop functions with concrete arguments and asserts the
  exact result, computed at generation time by running the generated code; the functions are
  called with Zipf-like popularity, so some are used by a hundred tests and some by a few.
- Costs are `time.sleep` (the CPU stays free, so the timing is stable on a busy machine): each
  test's from a log-normal distribution (median about 50 ms) plus a few end-to-end tests of
  1-5 s, fixtures of 0.5-3 s per module and 1.5 s per session, scaled so that the sleeps total
  ``target_s`` (100 s: with pytest's own time a serial run takes 101-104 s).

    python benchmarks/budget_suite.py DEST [--seed 7]   # write one to look at
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from string import Template
from typing import Callable

from selection import Suite

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "shop"

#: (module, layer, [int, int, int, list, bool, str] function names, class name). A module calls
#: only modules of lower layers.
MODULES = (
    ("money", 0, ("round_cents", "clamp_amount", "to_cents", "sum_amounts", "is_small_amount",
                  "amount_label"), "Ledger"),
    ("units", 0, ("pack_count", "weight_band", "convert_units", "total_weight", "is_bulk",
                  "unit_label"), "Crate"),
    ("tax", 0, ("vat", "duty", "levy", "sum_taxes", "is_exempt", "tax_code"), "TaxRule"),
    ("catalog", 0, ("list_price", "category_rank", "shelf_life", "count_listed", "is_listed",
                    "sku_code"), "Product"),
    ("pricing", 1, ("unit_price", "bulk_price", "price_with_tax", "sum_prices", "is_premium",
                    "price_label"), "Tariff"),
    ("discounts", 1, ("member_discount", "volume_discount", "coupon_value", "sum_discounts",
                      "is_eligible", "promo_code"), "Coupon"),
    ("inventory", 1, ("reorder_point", "restock_amount", "reserve", "stock_level", "is_low",
                      "bin_label"), "Bin"),
    ("shipping", 1, ("parcel_cost", "zone_surcharge", "delivery_days", "parcel_weight",
                     "is_free_shipping", "tracking_code"), "Carrier"),
    ("loyalty", 1, ("points_for", "bonus_points", "redeem_value", "sum_points", "is_gold",
                    "member_code"), "Account"),
    ("orders", 2, ("order_total", "line_total", "order_fee", "order_weight", "is_large_order",
                   "order_ref"), "Basket"),
    ("invoices", 2, ("invoice_total", "late_fee", "due_days", "sum_invoices", "is_overdue",
                     "invoice_number"), "Invoice"),
    ("checkout", 2, ("checkout_total", "payment_fee", "fraud_score", "basket_total",
                     "is_approved", "receipt_code"), "Terminal"),
    ("returns", 2, ("refund_amount", "restock_fee", "return_window", "sum_refunds",
                    "is_returnable", "rma_code"), "ReturnPolicy"),
)  # fmt: skip

#: The function fixtures' values (conftest.py returns them; expected results use them).
CART = [12, 48, 7, 95]
CUSTOMER = {"id": 7, "points": 120}
WORDS = ("red shoe", " blue hat", "green scarf ", "wool sock", "Silk Tie", "rain coat", "bag")

TEMPLATES = {
    "threshold": '''\
def $name(amount, threshold=$t):
    """Take RATE percent off amounts from the threshold on."""
    cut = amount * RATE // 100
    if amount >= threshold:
        return amount - cut
    return amount
''',
    "tiered": '''\
def $name(qty, small=$small, large=$large):
    """STEP per unit, a little less in the middle band, one less per unit above it."""
    if qty <= small:
        return qty * STEP
    if qty < large:
        return qty * STEP - $c
    return qty * (STEP - 1)
''',
    "stepped": '''\
def $name(value, step=$s):
    """Round up to a whole step, never beyond LIMIT."""
    rounded = (value + step - 1) // step * step
    if rounded > LIMIT:
        return LIMIT
    return rounded
''',
    "composed": """\
def $name(amount, qty=$q):
    base = $dep(amount * qty)
    if base != amount * qty:
        base += $k
    return base
""",
    "pair": """\
def $name(amount, extra=$e):
    first = $dep(amount)
    second = $dep2(first + extra)
    if first > second:
        return first - second
    return second - first + RATE
""",
    "capped": '''\
def $name(values, cap=$cap):
    """The sum of the values, each at most cap, the total at most LIMIT."""
    total = 0
    for value in values:
        total += min(value, cap)
    if total > LIMIT:
        return LIMIT
    return total
''',
    "between": """\
def $name(value, low=$low, high=$high):
    if value < low:
        return False
    return value <= high
""",
    "over": """\
def $name(amount, margin=$m):
    return $dep(amount) + margin > LIMIT // 2
""",
    "code": '''\
def $name(number, width=$w):
    """PREFIX and the number, zero-padded to width (its last digits if longer)."""
    text = str(number).rjust(width, "0")
    if len(text) > width:
        text = text[-width:]
    return PREFIX + "-" + text
''',
    "slug": """\
def $name(name, upper=$upper):
    text = name.strip().replace(" ", "_")
    if upper:
        text = text.upper()
    return PREFIX + ":" + text
""",
    "class": '''\
class $name:
    """A $module rule: a base charge up to floor units, rate per unit above."""

    rate = $rate
    floor = $floor
    kind = "$kind"

    def __init__(self, base):
        self.base = base

    def cost(self, units):
        if units < self.floor:
            return self.base
        return self.base + (units - self.floor) * self.rate

    def describe(self):
        return self.kind + ":" + str(self.base)
''',
}
#: The module constants each template uses.
USES = {"threshold": "RATE", "tiered": "STEP", "stepped": "LIMIT", "pair": "RATE",
        "capped": "LIMIT", "over": "LIMIT", "code": "PREFIX", "slug": "PREFIX"}  # fmt: skip


@dataclasses.dataclass
class Code:
    """One function or class of the package, and how a test calls it."""

    module: str
    name: str
    kind: str  # int, list, bool, str, class
    source: str
    #: rng -> (callee text, positional argument texts).
    call: Callable[[random.Random], tuple[str, list[str]]]
    weight: float = 1.0


def _default_or(rng: random.Random, share: float, value: str) -> list[str]:
    return [value] if rng.random() < share else []


def _function(
    rng: random.Random, module: str, name: str, template: str, consts: dict[str, object],
    deps: list[Code],
) -> Code:  # fmt: skip
    """Fill ``template`` with random parameters; the arguments a test passes explore both
    sides of its comparisons, and leave the defaults as they are more often than not."""
    r = rng.randint
    here = f"{module}.{name}"
    limit = int(consts["LIMIT"])  # type: ignore[call-overload]
    kind = "int"
    p: dict[str, object] = {}
    if template == "threshold":
        p = {"t": r(20, 120)}
        t = int(p["t"])  # type: ignore[call-overload]

        def call(g: random.Random) -> tuple[str, list[str]]:
            return here, [str(g.randint(0, 2 * t)), *_default_or(g, 0.3, str(g.randint(5, 150)))]
    elif template == "tiered":
        small = r(2, 8)
        large = small + r(3, 12)
        p = {"small": small, "large": large, "c": r(1, 9)}

        def call(g: random.Random) -> tuple[str, list[str]]:
            return here, [
                str(g.randint(0, large + 6)),
                *_default_or(g, 0.25, str(g.randint(1, 10))),
            ]
    elif template == "stepped":
        p = {"s": r(5, 25)}

        def call(g: random.Random) -> tuple[str, list[str]]:
            value = g.randint(0, limit * 13 // 10)
            return here, [str(value), *_default_or(g, 0.25, str(g.randint(2, 30)))]
    elif template == "composed":
        p = {"q": r(1, 4), "k": r(1, 15), "dep": f"{deps[0].module}.{deps[0].name}"}

        def call(g: random.Random) -> tuple[str, list[str]]:
            return here, [str(g.randint(1, 120)), *_default_or(g, 0.3, str(g.randint(1, 6)))]
    elif template == "pair":
        p = {"e": r(0, 30), "dep": f"{deps[0].module}.{deps[0].name}",
             "dep2": f"{deps[1].module}.{deps[1].name}"}  # fmt: skip

        def call(g: random.Random) -> tuple[str, list[str]]:
            return here, [str(g.randint(1, 150)), *_default_or(g, 0.3, str(g.randint(0, 40)))]
    elif template == "capped":
        kind = "list"
        cap = r(40, 160)
        p = {"cap": cap}

        def call(g: random.Random) -> tuple[str, list[str]]:
            values = [g.randint(0, 2 * cap) for _ in range(g.randint(2, 6))]
            return here, [repr(values), *_default_or(g, 0.25, str(g.randint(20, 200)))]
    elif template in ("between", "over"):
        kind = "bool"
        if template == "between":
            low = r(5, 50)
            high = low + r(10, 80)
            p = {"low": low, "high": high}

            def call(g: random.Random) -> tuple[str, list[str]]:
                value = g.randint(low - 15, high + 15)
                return here, [str(value), *_default_or(g, 0.25, str(g.randint(0, 60)))]
        else:
            p = {"m": r(0, 40), "dep": f"{deps[0].module}.{deps[0].name}"}

            def call(g: random.Random) -> tuple[str, list[str]]:
                return here, [str(g.randint(0, limit)), *_default_or(g, 0.3, str(g.randint(0, 80)))]
    elif template == "code":
        kind = "str"
        w = r(3, 6)
        p = {"w": w}

        def call(g: random.Random) -> tuple[str, list[str]]:
            number = (
                g.randint(0, 10**w - 1) if g.random() < 0.7 else g.randint(10**w, 10 ** (w + 2))
            )
            return here, [str(number), *_default_or(g, 0.25, str(g.randint(2, 8)))]
    elif template == "slug":
        kind = "str"
        p = {"upper": rng.choice(["True", "False"])}

        def call(g: random.Random) -> tuple[str, list[str]]:
            return here, [repr(g.choice(WORDS)), *_default_or(g, 0.3, g.choice(["True", "False"]))]
    else:
        raise ValueError(template)
    source = Template(TEMPLATES[template]).substitute(name=name, **p)
    return Code(module, name, kind, source, call)


def _class(rng: random.Random, module: str, name: str) -> Code:
    floor = rng.randint(2, 10)
    fields = {"rate": rng.randint(2, 15), "floor": floor, "kind": module[:4]}
    source = Template(TEMPLATES["class"]).substitute(name=name, module=module, **fields)

    def call(g: random.Random) -> tuple[str, list[str]]:
        instance = f"{module}.{name}({g.randint(0, 90)})"
        if g.random() < 0.7:
            return f"{instance}.cost", [str(g.randint(0, floor + 10))]
        return f"{instance}.describe", []

    return Code(module, name, "class", source, call)


def build_package(rng: random.Random) -> tuple[dict[str, str], list[Code]]:
    """The package's files (path -> text) and its callables."""
    files = {f"{PACKAGE}/__init__.py": '"""A small shop, generated for the budget benchmark."""\n'}
    everything: list[Code] = []
    ints: dict[int, list[Code]] = {}  # int functions by layer: what upper layers call
    for module, layer, names, cls in MODULES:
        consts: dict[str, object] = {
            "RATE": rng.randint(3, 25),
            "STEP": rng.randint(3, 12),
            "LIMIT": rng.randint(200, 900),
            "PREFIX": module[:3].upper(),
        }
        lower = [f for lay in range(layer) for f in ints.get(lay, [])]
        int_names, list_name, bool_name, str_name = names[:3], names[3], names[4], names[5]
        made: list[tuple[str, Code]] = []
        for i, name in enumerate(int_names):
            if lower and i == 0:
                template = "composed"
            elif lower and i == 1:
                template = rng.choice(["composed", "pair"])
            else:
                template = rng.choice(["threshold", "tiered", "stepped"])
            deps = rng.sample(lower, 2) if lower else []
            made.append((template, _function(rng, module, name, template, consts, deps)))
        made.append(("capped", _function(rng, module, list_name, "capped", consts, [])))
        template = "over" if lower and rng.random() < 0.5 else "between"
        deps = rng.sample(lower, 1) if lower else []
        made.append((template, _function(rng, module, bool_name, template, consts, deps)))
        template = rng.choice(["code", "slug"])
        made.append((template, _function(rng, module, str_name, template, consts, [])))
        made.append(("class", _class(rng, module, cls)))
        used = {USES[t] for t, _ in made if t in USES}
        imports = sorted({d.split(".")[0] for _, c in made for d in _deps_in(c.source)})
        head = [f'"""The {module} rules of the shop."""\n']
        if imports:
            head.append(f"from {PACKAGE} import {', '.join(imports)}\n")
        head.append("".join(f"{k} = {v!r}\n" for k, v in consts.items() if k in used))
        files[f"{PACKAGE}/{module}.py"] = (
            "\n".join(["\n".join(head), *(c.source for _, c in made)])
            .replace("\n\ndef ", "\n\n\ndef ")
            .replace("\n\nclass ", "\n\n\nclass ")
        )
        ints.setdefault(layer, []).extend(c for t, c in made if c.kind == "int")
        everything.extend(c for _, c in made)
    return files, everything


def _deps_in(source: str) -> list[str]:
    modules = {m for m, *_ in MODULES}
    words = source.replace("(", " ").replace(")", " ").split()
    return [w for w in words if "." in w and w.split(".")[0] in modules]


# -- tests ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One collected test: its calls (expression texts), cost and fixtures."""

    calls: list[str]
    cost_s: float
    fixtures: list[str]
    expected: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TestFunction:
    name: str
    cases: list[Case]  # one, or the parameters of a parametrized test
    callee: str = ""  # parametrized: the callee, args vary per case
    args: list[list[str]] = dataclasses.field(default_factory=list)

    __test__ = False


@dataclasses.dataclass
class TestModule:
    name: str
    doc: str
    kind: str  # unit, cases, db, api, flow
    functions: list[TestFunction]
    fixture_s: tuple[float, float] = (0.0, 0.0)  # db: the module fixture's set-up, tear-down

    __test__ = False


SUFFIXES = ("basic", "zero", "large", "small", "default", "override", "edge", "rounding",
            "boundary", "typical", "negative", "repeat", "mixed", "upper", "lower")  # fmt: skip


def _weighted(rng: random.Random, pool: list[Code]) -> Code:
    return rng.choices(pool, weights=[c.weight for c in pool])[0]


def plan_tests(rng: random.Random, callables: list[Code], total: int) -> list[TestModule]:
    """About ``total`` tests in 32 modules; costs are set later by `set_costs`."""
    order = callables[:]
    rng.shuffle(order)
    for rank, c in enumerate(order, 1):
        c.weight = 1 / rank  # Zipf: a few functions are everyone's, most are a few tests'
    by_module: dict[str, list[Code]] = {}
    for c in callables:
        by_module.setdefault(c.module, []).append(c)
    names = [m for m, *_ in MODULES]
    upper = [m for m, layer, *_ in MODULES if layer > 0]
    top = [m for m, layer, *_ in MODULES if layer == 2]
    specs: list[tuple[str, str, list[str]]] = [(f"test_{m}", "unit", [m]) for m in names]
    specs += [(f"test_{m}_cases", "cases", [m]) for m in rng.sample(names, 8)]
    specs += [(f"test_{m}_db", "db", [m]) for m in rng.sample(upper, 6)]
    specs += [
        ("test_storefront_api", "api", top[:2]),
        ("test_billing_api", "api", top[1:]),
        ("test_checkout_flow", "flow", top),
        ("test_refund_flow", "flow", ["returns", "loyalty", "invoices"]),
        ("test_restock_flow", "flow", ["inventory", "orders", "shipping"]),
    ]
    sizes = [rng.lognormvariate(0, 0.45) for _ in specs]
    counts = [max(6, round(s * total / sum(sizes))) for s in sizes]
    modules = []
    for (name, kind, subjects), count in zip(specs, counts):
        primary = [c for m in subjects for c in by_module[m]]
        used: set[str] = set()
        functions: list[TestFunction] = []
        made = 0
        while made < count:
            param_share = {"cases": 0.6, "unit": 0.2}.get(kind, 0.0)
            first = _weighted(rng, primary)
            base = first.name.lower() if first.kind != "class" else first.name.lower() + "_cost"
            test_name = f"test_{base}_{rng.choice(SUFFIXES)}"
            n = 2
            while test_name in used:
                test_name, n = f"test_{base}_{rng.choice(SUFFIXES)}_{n}", n + 1
            used.add(test_name)
            if rng.random() < param_share and first.kind != "class":
                k = min(rng.randint(2, 6), count - made) or 1
                calls = [first.call(rng) for _ in range(k)]
                fn = TestFunction(
                    test_name,
                    [Case([f"{callee}({', '.join(a)})"], 0.0, []) for callee, a in calls],
                    callee=calls[0][0],
                    args=[a for _, a in calls],
                )
            else:
                fixtures: list[str] = []
                calls = [first.call(rng)]
                for _ in range(rng.choices([0, 1, 2], weights=[50, 35, 15])[0]):
                    calls.append(_weighted(rng, callables).call(rng))
                exprs = [f"{callee}({', '.join(a)})" for callee, a in calls]
                if kind in ("unit", "cases") and rng.random() < 0.2:
                    lists = [c for c in callables if c.kind == "list"]
                    fixtures.append("cart")
                    exprs.append(f"{_weighted(rng, lists).call(rng)[0]}(cart)")
                if kind in ("unit", "flow") and rng.random() < 0.15:
                    ints = [c for c in callables if c.kind == "int"]
                    fixtures.append("customer")
                    exprs.append(f"{_weighted(rng, ints).call(rng)[0]}(customer['points'])")
                if rng.random() < 0.1:
                    fixtures.append("clock")
                if kind == "db":
                    fixtures.insert(0, "database")
                if kind == "api":
                    fixtures.insert(0, "server")
                if kind == "flow" or (kind == "db" and rng.random() < 0.3):
                    fixtures.insert(0, "warehouse")
                fn = TestFunction(test_name, [Case(exprs, 0.0, fixtures)])
            functions.append(fn)
            made += len(fn.cases)
        subject = ", ".join(subjects)
        doc = {
            "unit": f"Unit tests of shop.{subject}.",
            "cases": f"Table-driven cases for shop.{subject}.",
            "db": f"shop.{subject} against a test database (module-scoped, slow to set up).",
            "api": f"The HTTP API over shop {subject}, against a test server per module.",
            "flow": f"End-to-end flows through shop {subject}, with the session's warehouse.",
        }[kind]
        modules.append(TestModule(name, doc, kind, functions))
    return modules


FIXED = {"warehouse": (1.5, 0.2), "server": (1.1, 0.3), "cart": (0.012, 0.0),
         "customer": (0.006, 0.0), "clock": (0.003, 0.0)}  # fmt: skip


def set_costs(rng: random.Random, modules: list[TestModule], target_s: float) -> None:
    """Log-normal test costs, a few end-to-end tests of 1-5 s, fixtures; sleeps sum to target_s."""
    fixture_s = FIXED["warehouse"][0] + FIXED["warehouse"][1]
    for module in modules:
        if module.kind == "db":
            module.fixture_s = (round(rng.uniform(0.5, 3.0), 2), round(rng.uniform(0.05, 0.3), 2))
            fixture_s += sum(module.fixture_s)
        if module.kind == "api":
            fixture_s += sum(FIXED["server"])
    cases = [c for m in modules for f in m.functions for c in f.cases]
    small = ("cart", "customer", "clock")
    fixture_s += sum(sum(FIXED[x]) for c in cases for x in c.fixtures if x in small)
    slow_pool = [
        f.cases[0] for m in modules if m.kind in ("flow", "db", "api") for f in m.functions
        if len(f.cases) == 1
    ]  # fmt: skip
    slow = rng.sample(slow_pool, min(8, len(slow_pool)))
    for case in slow:
        case.cost_s = round(min(5.0, max(1.0, rng.lognormvariate(math.log(2.0), 0.45))), 3)
    chosen = {id(c) for c in slow}
    regular = [c for c in cases if id(c) not in chosen]
    draws = [min(1.0, max(0.003, rng.lognormvariate(math.log(0.045), 1.2))) for _ in regular]
    scale = (target_s - fixture_s - sum(c.cost_s for c in slow)) / sum(draws)
    for case, draw in zip(regular, draws):
        case.cost_s = round(draw * scale, 4)


def compute_expected(root: Path, python: str, modules: list[TestModule]) -> None:
    """Run the generated package on every call and keep the repr of each result."""
    cases = [c for m in modules for f in m.functions for c in f.cases]
    exprs = [e for c in cases for e in c.calls]
    script = textwrap.dedent(
        f"""\
        import importlib, json, sys
        ns = {{m: importlib.import_module("{PACKAGE}." + m) for m in {[m for m, *_ in MODULES]!r}}}
        ns.update(cart={CART!r}, customer={CUSTOMER!r})
        print(json.dumps([repr(eval(e, ns)) for e in json.load(sys.stdin)]))
        """
    )
    proc = subprocess.run(
        [python, "-B", "-c", script], cwd=root, input=json.dumps(exprs), capture_output=True,
        text=True, check=False, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the generated package failed: {proc.stderr[-2000:]}")
    results = iter(json.loads(proc.stdout))
    for case in cases:
        case.expected = [next(results) for _ in case.calls]


def render_module(module: TestModule) -> str:
    used = sorted({e.split(".")[0] for f in module.functions for c in f.cases for e in c.calls})
    lines = [f'"""{module.doc}"""', "", "import time", ""]
    if any(f.args for f in module.functions) or module.kind == "db":
        lines[2:3] = ["import time", "", "import pytest"]
    lines.append(f"from {PACKAGE} import {', '.join(used)}")
    if module.kind == "db":
        setup, teardown = module.fixture_s
        lines += [
            "", "",
            '@pytest.fixture(scope="module")',
            "def database():",
            f"    time.sleep({setup})  # connect, migrate, load the fixtures' rows",
            '    yield {"rows": 120}',
            f"    time.sleep({teardown})",
        ]  # fmt: skip
    for fn in module.functions:
        lines += ["", ""]
        if fn.args:
            lines += [
                "@pytest.mark.parametrize(",
                '    ("args", "expected", "cost"),',
                "    [",
                *(
                    f"        (({', '.join(a)}{',' if len(a) == 1 else ''}), {c.expected[0]}, "
                    f"{c.cost_s}),"
                    for a, c in zip(fn.args, fn.cases)
                ),
                "    ],",
                ")",
                f"def {fn.name}(args, expected, cost):",
                "    time.sleep(cost)",
                f"    assert {fn.callee}(*args) == expected",
            ]
        else:
            case = fn.cases[0]
            lines.append(f"def {fn.name}({', '.join(case.fixtures)}):")
            lines.append(f"    time.sleep({case.cost_s})")
            lines += [
                f"    assert {e} {'is' if x in ('True', 'False') else '=='} {x}"
                for e, x in zip(case.calls, case.expected)
            ]
    return "\n".join(lines) + "\n"


CONFTEST = f'''\
"""Shared fixtures: a warehouse for the session, a server per module, small per-test objects."""

import time

import pytest


@pytest.fixture(scope="session")
def warehouse():
    time.sleep({FIXED["warehouse"][0]})  # start the stock service
    yield {{"name": "central", "bins": 40}}
    time.sleep({FIXED["warehouse"][1]})


@pytest.fixture(scope="module")
def server():
    time.sleep({FIXED["server"][0]})  # start the API server
    yield {{"port": 8080}}
    time.sleep({FIXED["server"][1]})


@pytest.fixture
def cart():
    time.sleep({FIXED["cart"][0]})
    return {CART!r}


@pytest.fixture
def customer():
    time.sleep({FIXED["customer"][0]})
    return {CUSTOMER!r}


@pytest.fixture
def clock():
    time.sleep({FIXED["clock"][0]})
    return 1_700_000_000
'''


def generate(
    root: Path, python: str, seed: int = 7, tests: int = 650, target_s: float = 100.0
) -> list[TestModule]:
    """Write the project into ``root`` (a new directory) and commit it."""
    rng = random.Random(f"budget-suite:{seed}")
    files, callables = build_package(rng)
    modules = plan_tests(rng, callables, tests)
    set_costs(rng, modules, target_s)
    root.mkdir(parents=True)
    files["pyproject.toml"] = "[tool.pytest.ini_options]\ntestpaths = ['tests']\n"
    files[".gitignore"] = "__pycache__/\n.pytest_cache/\n*.db\n.coverage*\n"
    files["tests/conftest.py"] = CONFTEST
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    compute_expected(root, python, modules)
    for module in modules:
        (root / "tests" / f"{module.name}.py").write_text(render_module(module), encoding="utf-8")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "generated shop"], cwd=root, check=True)
    return modules


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def generated_suite(work: Path, seed: int = 7, python: str = "") -> Suite:
    """The generated project in ``work/generated``, as a `selection.Suite`."""
    python = python or default_python()
    root = work / "generated"
    generate(root, python, seed)
    # The venv has this checkout installed (editable): its entry point would load the plugin a
    # second time next to Suite.run's `-p pytest_feedback.plugin`.
    args = ["-p", "no:feedback"]
    return Suite("generated", root, python, {"PYTHONPATH": str(root)}, args, PACKAGE)


def describe(modules: list[TestModule]) -> str:
    cases = [c for m in modules for f in m.functions for c in f.cases]
    costs = sorted(c.cost_s for c in cases)
    return (
        f"{len(modules)} test modules, {len(cases)} tests; test sleeps: median "
        f"{costs[len(costs) // 2] * 1000:.0f} ms, max {costs[-1]:.1f} s, "
        f"{sum(x >= 1 for x in costs)} of 1 s or more, total {sum(costs):.0f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(describe(generate(args.dest, default_python(), args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
