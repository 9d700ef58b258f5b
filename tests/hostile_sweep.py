"""A hostile sweep: several hundred bad inputs to nirjax, each classified automatically.

Categories:

- `file`: .nir files corrupted at the HDF5 level (every stored field of every node type of a
  few base graphs, mutated: NaN, inf, negative, zero, huge, tiny, bool, str, complex, wrong
  rank and shape, deleted, an extra key, a renamed type; and graph-level damage: versions,
  edges, names, empty groups, cycles, options recorded in the metadata);
- `api`: the Python API (`from_nir`, `load`, `read`, `write`, `Graph.run`, `simulate`,
  `simulate_hdf5`, `with_options`, `with_execution`) with wrong types, shapes, dtypes, values;
- `cli`: every command with bad flags, missing / unreadable / unwritable paths and files of the
  wrong kind;
- `training`: `training.TrainConfig`, `training.fit`, `training.evaluate` and
  `training.SpikeDataset` with bad data, labels and hyper-parameters.

Every case ends in one outcome class:

- `correct`: an input that is valid ran and its result passed the case's check (for a
  corrupted file whose damage happens to be a valid graph: every stored parameter loaded
  exactly and the run gave finite values of the declared shape);
- `clear`: refused with a ValueError / TypeError / NotImplementedError / OSError (or a runtime
  check naming the node and step), whose message names what is at fault (the case's node,
  field, flag or path) and says what was expected; on the CLI: exit code 2 and one line;
- `unclear`: refused the right way, but the message does not name the culprit or what was
  expected;
- `traceback`: any other exception (AssertionError, KeyError, IndexError, AttributeError,
  h5py's or XLA's errors) or, on the CLI, exit code 1 (`internal error`);
- `silent`: a bad input that ran and returned something, or a valid one whose result is wrong.

`python tests/hostile_sweep.py` runs every case and prints the counts per category and class;
tests/test_hostile_sweep.py runs a fast subset by default and all of them when marked slow.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # run as a script: import this checkout's nirjax and training
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib
import dataclasses
import io
import re
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import h5py
import jax
import jax.numpy as jnp
import nir
import numpy as np

import nirjax

DT = 1e-3
OUTCOMES = ("correct", "clear", "unclear", "traceback", "silent")
CLEAR_TYPES = (ValueError, TypeError, NotImplementedError, OSError)
# A message says what was expected (or why the value is refused) when it has one of these.
_EXPECTED = re.compile(
    r"expected|must|should|needs?\b|requires?|only|cannot|can't|not a|no such|missing|unknown|"
    r"outside|over |larger|exceeds|invalid|refuse|not allowed|unexpected|became NaN|"
    r"does not|do not|is not|has no|disagree|differ|[<>]=?|out of range|at least|at most|too |"
    r"\bbut\b|\bno \w+|unrecognized|\b(give|use|pass|fix|add|write|leave|cast|wrap|clean|drop) ",
    re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input. `run()` raises or returns; `bad` says it must be refused (True), must
    run correctly (False, `check(result)` must hold), or may do either (None: refused clearly,
    or run with `check(result)` holding). A clear refusal names one of `needles`."""

    category: str
    name: str
    run: Callable[[], Any]
    bad: bool | None = True
    needles: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None
    cli: bool = False
    fast: bool = True


def _message_is_clear(text: str, needles: tuple[str, ...]) -> bool:
    named = not needles or any(n in text for n in needles)
    return named and bool(_EXPECTED.search(text))


def classify(case: Case) -> tuple[str, str]:
    """`(outcome, detail)` of running `case`."""
    if case.cli:
        return _classify_cli(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a warning is not a refusal: judged by the result
        try:
            result = case.run()
        except CLEAR_TYPES as e:
            if case.bad is False:
                return "silent", f"refused a valid input: {type(e).__name__}: {e}"
            text = str(e)
            if _message_is_clear(text, case.needles):
                return "clear", f"{type(e).__name__}: {text}"
            return "unclear", f"{type(e).__name__}: {text}"
        except Exception as e:  # noqa: BLE001 - the classification itself
            from nirjax._errors import runtime_message

            text = runtime_message(e)
            if text is not None and case.bad is not False:
                ok = _message_is_clear(text, case.needles + ("node '", "input '"))
                return ("clear" if ok else "unclear"), text
            first = next((ln for ln in str(e).splitlines() if ln.strip()), "")
            return "traceback", f"{type(e).__name__}: {first[:300]}"
    if case.bad:
        return "silent", f"accepted: returned {_short(result)}"
    try:
        ok = case.check is None or bool(case.check(result))
    except Exception as e:  # noqa: BLE001
        return "silent", f"result check failed: {type(e).__name__}: {e}"
    return ("correct", "") if ok else ("silent", f"wrong result: {_short(result)}")


def _classify_cli(case: Case) -> tuple[str, str]:
    err = io.StringIO()
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        try:
            code = case.run()
        except BaseException as e:  # noqa: BLE001 - main must never raise
            return "traceback", f"main raised {type(e).__name__}: {e}"
    text = err.getvalue().strip()
    if code == 0:
        if case.bad:
            return "silent", f"exit 0: {out.getvalue()[-200:]!r}"
        ok = case.check is None or bool(case.check(out.getvalue()))
        return ("correct", "") if ok else ("silent", "exit 0, wrong output")
    if code == 2:
        if case.bad is False:
            return "silent", f"refused a valid call: {text}"
        lines = text.splitlines()
        if len(lines) == 1 and "Traceback" not in text and _message_is_clear(text, case.needles):
            return "clear", text
        return "unclear", text
    return "traceback", f"exit {code}: {text[-300:]}"


def _short(x: Any) -> str:
    s = repr(x)
    return s if len(s) < 120 else s[:117] + "..."


# ---------------------------------------------------------------------------- base graphs
def _io(shape):
    return (nir.Input(input_type={"input": np.array(shape)}),
            nir.Output(output_type={"output": None}))


def _chain(nodes: dict, in_shape) -> nir.NIRGraph:
    i, o = _io(in_shape)
    allnodes = {"in": i, **nodes, "out": o}
    keys = list(allnodes)
    return nir.NIRGraph(nodes=allnodes, edges=list(zip(keys[:-1], keys[1:])), type_check=False)


def _lif(n, **kw):
    p = dict(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),
             v_threshold=np.ones(n), v_reset=np.zeros(n))
    p.update(kw)
    return nir.LIF(**p)


def base_graphs() -> dict[str, nir.NIRGraph]:
    n = 3
    sub = nir.NIRGraph(
        nodes={"i": nir.Input(input_type={"input": np.array([n])}),
               "w": nir.Linear(weight=np.eye(n) * 0.5),
               "o": nir.Output(output_type={"output": np.array([n])})},
        edges=[("i", "w"), ("w", "o")], type_check=False)
    return {
        "lif": _chain({"a": nir.Affine(weight=np.eye(n) * 2, bias=np.full(n, 0.1)),
                       "lif": _lif(n)}, (n,)),
        "cuba": _chain({"d": nir.Delay(delay=np.full(2, 2e-3)),
                        "cu": nir.CubaLIF(tau_mem=np.full(2, 0.02), tau_syn=np.full(2, 0.01),
                                          r=np.ones(2), v_leak=np.zeros(2),
                                          v_threshold=np.ones(2), v_reset=np.zeros(2),
                                          w_in=np.ones(2))}, (2,)),
        "li_if": _chain({"w": nir.Linear(weight=np.eye(n)),
                         "li": nir.LI(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n)),
                         "s": nir.Scale(scale=np.full(n, 2.0)),
                         "if": nir.IF(r=np.ones(n), v_threshold=np.ones(n),
                                      v_reset=np.zeros(n))}, (n,)),
        "i_thr": _chain({"int": nir.I(r=np.ones(n)),
                         "thr": nir.Threshold(threshold=np.full(n, 0.5)),
                         "cli": nir.CubaLI(tau_mem=np.full(n, 0.02), tau_syn=np.full(n, 0.01),
                                           r=np.ones(n), v_leak=np.zeros(n),
                                           w_in=np.ones(n))}, (n,)),
        "cnn": _chain({"c": nir.Conv2d(input_shape=None, weight=np.full((2, 1, 2, 2), 0.25),
                                       stride=1, padding=0, dilation=1, groups=1,
                                       bias=np.zeros(2)),
                       "p": nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]),
                                          padding=np.array([0, 0])),
                       "f": nir.Flatten(input_type={"input": np.array([2, 1, 1])},
                                        start_dim=0)}, (1, 4, 4)),
        "conv1d": _conv1d_graph(),
        "nested": nir.NIRGraph(
            nodes={"in": nir.Input(input_type={"input": np.array([n])}), "sub": sub,
                   "lif": _lif(n), "out": nir.Output(output_type={"output": None})},
            edges=[("in", "sub.i"), ("sub.o", "lif"), ("lif", "out")], type_check=False),
    }


def _conv1d_graph():
    # Conv1d on (1, 5) -> (2, 4); AvgPool2d on (1, 4, 4) -> (1, 2, 2).
    nodes = {
        "in": nir.Input(input_type={"input": np.array([1, 5])}),
        "c1": nir.Conv1d(input_shape=None, weight=np.full((2, 1, 2), 0.5), stride=1, padding=0,
                         dilation=1, groups=1, bias=np.zeros(2)),
        "out": nir.Output(output_type={"output": None}),
        "in2": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "ap": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                            padding=np.array([0, 0])),
        "out2": nir.Output(output_type={"output": None}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("in", "c1"), ("c1", "out"), ("in2", "ap"),
                                            ("ap", "out2")], type_check=False)


class Workspace:
    """A temporary folder with the base files (written once) and scratch space per case."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="nirjax-sweep-")
        self.base = {}
        for name, g in base_graphs().items():
            path = os.path.join(self.root, f"base-{name}.nir")
            nirjax.write(path, nirjax.from_nir(g, dt=DT))
            self.base[name] = path
        self.count = 0

    def scratch(self, suffix=".nir") -> str:
        self.count += 1
        d = os.path.join(self.root, f"case{self.count}")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"f{suffix}")

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------- file cases
INT_FIELDS = {"stride", "padding", "dilation", "groups", "kernel_size", "start_dim", "end_dim",
              "shape", "input_shape", "input_type"}
POSITIVE = {"tau", "tau_mem", "tau_syn", "stride", "dilation", "groups", "kernel_size", "shape",
            "input_shape", "input_type"}
NON_NEGATIVE = POSITIVE | {"delay", "padding"}
OPTIONAL = {"v_reset", "w_in", "input_shape", "start_dim", "end_dim", "input_type"}
MUTATIONS = ("nan", "inf", "neg", "zero", "huge", "tiny", "bool", "str", "complex", "grow",
             "shrink", "rank", "float", "int", "scalar", "delete")


def _expect(kind: str, field: str, how: str) -> bool | None:
    """True: the mutated file must be refused; None: it may be valid (then it must load
    exactly and run finite)."""
    if how in ("nan", "inf", "bool", "str", "complex", "huge"):
        return True
    if how == "delete":
        return None if field in OPTIONAL else True
    if how == "neg":
        return True if field in NON_NEGATIVE else None
    if how == "zero":
        return True if field in POSITIVE else None
    if how in ("tiny", "float"):
        return True if field in INT_FIELDS or (how == "tiny" and field in POSITIVE) else None
    if how in ("grow", "rank"):
        if field in ("stride", "padding", "dilation", "kernel_size", "groups", "scale",
                     "delay", "input_shape", "start_dim", "end_dim", "input_type"):
            return None
        return True
    return None  # int, scalar, shrink: may be valid


def _mutated(arr: np.ndarray, how: str):
    with np.errstate(all="ignore"):
        return {
            "nan": lambda: np.full(arr.shape, np.nan),
            "inf": lambda: np.full(arr.shape, np.inf),
            "neg": lambda: -np.abs(arr.astype(np.float64)) - 1
            if arr.dtype.kind == "f" else -np.abs(arr) - 1,
            "zero": lambda: np.zeros(arr.shape, arr.dtype),
            "huge": lambda: np.full(arr.shape, 1e39),
            "tiny": lambda: np.full(arr.shape, 1e-50),
            "bool": lambda: np.ones(arr.shape, bool),
            "str": lambda: "garbage",
            "complex": lambda: np.ones(arr.shape, complex),
            "grow": lambda: np.ones(tuple(arr.shape[:-1]) + (arr.shape[-1] + 1,), arr.dtype)
            if arr.ndim else np.ones(2, arr.dtype),
            "shrink": lambda: np.ones(arr.shape[1:], arr.dtype) if arr.ndim
            else np.ones((0,), arr.dtype),
            "rank": lambda: arr[None],
            "float": lambda: arr.astype(np.float64) + 0.5,
            "int": lambda: np.round(arr).astype(np.int64),
            "scalar": lambda: np.asarray(arr.flat[0] if arr.size else 1, arr.dtype),
        }[how]()


def _copy(ws: Workspace, base: str) -> str:
    path = ws.scratch()
    shutil.copyfile(ws.base[base], path)
    return path


def _loads_exactly_and_runs(path: str) -> bool:
    g = nirjax.load(path, dt=DT)
    with h5py.File(path, "r") as f:
        for where, node in g.walk():
            key = "node/nodes/" + "/nodes/".join(where.split("/"))
            for field in getattr(node, "parameters", ()) or ():
                if f"{key}/{field}" in f:
                    stored = np.asarray(f[f"{key}/{field}"][()], np.float64).astype(np.float32)
                    got = np.asarray(getattr(node, field))
                    if got.shape != stored.shape and stored.size == got.size:
                        return False
                    if not np.array_equal(np.broadcast_to(stored, got.shape), got):
                        return False
    shapes = g.input_shapes()
    shapes = shapes if isinstance(shapes, dict) else {g.inputs[0]: shapes}
    xs = {k: np.full((4, *s), 0.5, np.float32) for k, s in shapes.items()}
    out = g(xs if len(xs) > 1 else next(iter(xs.values())))
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(out))


def _field_case(ws, base, key, how, expect) -> Case:
    parts = key.split("/")
    node, field = "/".join(p for p in parts[2:-1] if p != "nodes"), parts[-1]

    def run():
        path = _copy(ws, base)
        with h5py.File(path, "a") as f:
            old = np.asarray(f[key][()])
            del f[key]
            if how != "delete":
                f[key] = _mutated(old, how)
        if expect:
            g = nirjax.load(path, dt=DT)
            shapes = g.input_shapes()
            shapes = shapes if isinstance(shapes, dict) else {g.inputs[0]: shapes}
            xs = {k: np.full((4, *s), 0.5, np.float32) for k, s in shapes.items()}
            return g(xs if len(xs) > 1 else next(iter(xs.values())))
        return _loads_exactly_and_runs(path)

    return Case("file", f"{base}:{node}.{field}={how}", run, bad=expect,
                needles=(f"'{node}'", f"'{node.split('/')[-1]}'"), check=lambda ok: ok)


def _stored_fields(path: str) -> list[str]:
    found = []
    with h5py.File(path, "r") as f:
        def visit(k, v):
            if isinstance(v, h5py.Dataset) and k.startswith("node/nodes/") \
                    and "/metadata" not in k and not k.endswith(("/type", "/edges")):
                found.append(k)
        f.visititems(visit)
    return sorted(found)


def _node_kind(path: str, key: str) -> str:
    with h5py.File(path, "r") as f:
        return nirjax._options.decode(f[key.rsplit("/", 1)[0] + "/type"][()])


def file_cases(ws: Workspace) -> list[Case]:
    cases = []
    for base, path in ws.base.items():
        for key in _stored_fields(path):
            kind = _node_kind(path, key)
            field = key.rsplit("/", 1)[1]
            for how in MUTATIONS:
                if field in ("shape", "input_type") and kind in ("Input", "Output", "Flatten") \
                        and how in ("int",):
                    continue
                expect = _expect(kind, field, how)
                if kind == "Output" and how not in ("nan", "inf", "bool", "str", "complex"):
                    expect = None  # an Output's declared shape may be inferred or refused
                cases.append(_field_case(ws, base, key, how, expect))
        # node-level damage: an extra key, a renamed / garbage / missing type
        for node in _node_names(path):
            cases.append(_node_case(ws, base, node, "extra", True))
            cases.append(_node_case(ws, base, node, "type_garbage", True))
            cases.append(_node_case(ws, base, node, "type_missing", True))
            cases.append(_node_case(ws, base, node, "type_other", None))
    cases += _graph_file_cases(ws)
    return cases


def _node_names(path: str) -> list[str]:
    with h5py.File(path, "r") as f:
        return sorted(k for k in f["node/nodes"] if "type" in f[f"node/nodes/{k}"])


def _node_case(ws, base, node, how, expect) -> Case:
    def run():
        path = _copy(ws, base)
        with h5py.File(path, "a") as f:
            grp = f[f"node/nodes/{node}"]
            if how == "extra":
                grp["bogus_field"] = np.ones(3)
            elif how == "type_garbage":
                del grp["type"]
                grp["type"] = "NotANirType"
            elif how == "type_missing":
                del grp["type"]
            else:
                old = nirjax._options.decode(grp["type"][()])
                del grp["type"]
                grp["type"] = {"LIF": "LI", "LI": "LIF", "Linear": "Scale",
                               "Affine": "Linear", "Input": "Output", "Output": "Input",
                               "Conv2d": "Conv1d", "Conv1d": "Conv2d", "CubaLIF": "LIF",
                               "Delay": "Scale", "SumPool2d": "AvgPool2d",
                               "AvgPool2d": "SumPool2d", "Flatten": "Input", "IF": "I",
                               "I": "Threshold", "Threshold": "I", "CubaLI": "CubaLIF",
                               "Scale": "Threshold", "NIRGraph": "LIF"}.get(old, "LIF")
        return _loads_exactly_and_runs(path) if expect is None else nirjax.load(path, dt=DT)

    return Case("file", f"{base}:{node}:{how}", run, bad=expect, needles=(f"'{node}'",),
                check=lambda ok: ok)


def _edit(ws, base, edit) -> Callable[[], Any]:
    def run():
        path = _copy(ws, base)
        with h5py.File(path, "a") as f:
            edit(f)
        g = nirjax.load(path, dt=DT)
        return g(np.full((4, *g.input_shapes()), 0.5, np.float32))
    return run


def _set(key, value):
    def edit(f):
        if key in f:
            del f[key]
        if value is not None:
            f[key] = value
    return edit


def _edges(*pairs):
    return _set("node/edges", np.array(pairs, dtype=object).astype("S") if pairs
                else np.zeros((0, 2), "S1"))


def _rename(old, new):
    def edit(f):
        f.move(f"node/nodes/{old}", f"node/nodes/{new}")
        edges = [[decode(a), decode(b)] for a, b in f["node/edges"][()]]
        edges = [[new if x == old else x for x in e] for e in edges]
        del f["node/edges"]
        f["node/edges"] = np.array(edges, dtype=h5py.string_dtype())
    return edit


def decode(x):
    return nirjax._options.decode(x)


def _meta(key, value):
    return _set(f"node/metadata/nirjax_{key}", value)


def _graph_file_cases(ws) -> list[Case]:
    L = "lif"
    good_chain = [("in", "a"), ("a", "lif"), ("lif", "out")]
    specs = [
        # name, edit, bad, needles
        ("version garbage", _set("version", "garbage"), True, ("version",)),
        ("version number", _set("version", 3.0), True, ("version",)),
        ("version empty", _set("version", ""), True, ("version",)),
        ("version missing", _set("version", None), False, ()),
        ("version group", lambda f: (f.__delitem__("version"), f.create_group("version")),
         True, ("version",)),
        ("no node group", _set("node", None), True, ("node",)),
        ("node is a dataset", lambda f: (f.__delitem__("node"), f.create_dataset("node", data=1)),
         True, ("node",)),
        ("top type garbage", _set("node/type", "Foo"), True, ("type",)),
        ("top type missing", _set("node/type", None), True, ("type",)),
        ("nodes missing", _set("node/nodes", None), True, ("nodes",)),
        ("nodes empty", lambda f: (f.__delitem__("node/nodes"), f.create_group("node/nodes")),
         True, ("node", "Input", "input")),
        ("edges missing", _set("node/edges", None), True, ("edges",)),
        ("edges empty", _edges(), True, ("edge", "Output", "connected", "in", "out")),
        ("edges scalar", _set("node/edges", 3.0), True, ("edges",)),
        ("edges 1-d", _set("node/edges", np.array(["in", "a"], dtype="S")), True, ("edges",)),
        ("edges triples", _set("node/edges", np.array([["in", "a", "lif"]], dtype="S")), True,
         ("edges",)),
        ("edges numbers", _set("node/edges", np.array([[1, 2]])), True, ("edges",)),
        ("edge to missing node", _edges(*good_chain, ("lif", "ghost")), True, ("ghost",)),
        ("edge from missing node", _edges(("ghost", "a"), *good_chain), True, ("ghost",)),
        # a cycle without a neuron runs with the documented one-step delay on its back edge
        ("self loop on Affine", _edges(*good_chain, ("a", "a")), None, ("'a'",)),
        ("self loop on LIF", _edges(*good_chain, ("lif", "lif")), None, ("'lif'",)),
        ("duplicate edge", _edges(*good_chain, ("a", "lif")), True, ("'a'", "'lif'")),
        ("edge into Input", _edges(*good_chain, ("lif", "in")), True, ("'in'",)),
        ("edge out of Output", _edges(*good_chain, ("out", "a")), True, ("'out'",)),
        ("no Output edge", _edges(("in", "a"), ("a", "lif")), True, ("'out'", "Output")),
        ("dangling node", _edges(("in", "lif"), ("lif", "out")), True, ("'a'",)),
        ("rename to unicode", _rename("a", "ä-ß"), False, ()),
        ("rename to dots", _rename("a", "a.b"), None, ("a.b",)),
        ("rename to space", _rename("a", "a b"), False, ()),
        ("rename to long", _rename("a", "x" * 300), False, ()),
        ("meta dt negative", _meta("dt", -1.0), True, ("dt",)),
        ("meta dt zero", _meta("dt", 0.0), True, ("dt",)),
        ("meta dt nan", _meta("dt", np.nan), True, ("dt",)),
        ("meta dt str", _meta("dt", "fast"), True, ("dt",)),
        ("meta dt bool", _meta("dt", True), True, ("dt",)),
        ("meta dt other", _meta("dt", 2e-3), True, ("dt",)),
        ("meta reset garbage", _meta("reset", "sideways"), True, ("reset",)),
        ("meta reset number", _meta("reset", 3), True, ("reset",)),
        ("meta discretization garbage", _meta("discretization", "rk4"), True,
         ("discretization",)),
        ("meta surrogate garbage", _meta("surrogate", "nope"), True, ("surrogate",)),
        ("meta surrogate_scale neg", _meta("surrogate_scale", -1.0), True,
         ("surrogate_scale",)),
        ("meta surrogate_scale nan", _meta("surrogate_scale", np.nan), True,
         ("surrogate_scale",)),
        ("meta detach_reset str", _meta("detach_reset", "yes"), True, ("detach_reset",)),
        ("meta detach_reset int", _meta("detach_reset", 3), True, ("detach_reset",)),
        # other nirjax_* keys are kept as user metadata (and written back), not options
        ("meta unknown nirjax key", _meta("bogus_option", 1.0), False, ()),
        ("meta user key", _set("node/metadata/owner", "me"), False, ()),
        ("node meta dt other", _set(f"node/nodes/{L}/metadata/nirjax_dt", 2e-3), True,
         ("dt",)),
        ("node meta reset garbage", _set(f"node/nodes/{L}/metadata/nirjax_reset", "x"), True,
         ("reset",)),
        ("node metadata is a dataset", _set(f"node/nodes/{L}/metadata", 3.0), True,
         ("metadata",)),
        ("graph metadata is a dataset", _set("node/metadata", 3.0), True, ("metadata",)),
        ("lif node is a dataset", lambda f: (f.__delitem__(f"node/nodes/{L}"),
                                         f.create_dataset(f"node/nodes/{L}", data=1.0)),
         True, ("'lif'",)),
        ("node group empty", lambda f: (f.__delitem__(f"node/nodes/{L}"),
                                        f.create_group(f"node/nodes/{L}")), True, ("'lif'",)),
        ("edges point into group", _edges(("in", "a"), ("a", "lif"), ("lif", "out"),
                                          ("a", "lif.x")), True, ("lif.x",)),
    ]
    cases = [Case("file", f"graph:{name}", _edit(ws, "lif", edit), bad=bad, needles=needles,
                  check=_finite)
             for name, edit, bad, needles in specs]
    # cycles without a neuron (an algebraic loop) and with one
    cases.append(Case("file", "graph:cycle without neuron", _edit(ws, "li_if", _edges(
        ("in", "w"), ("w", "s"), ("s", "w"), ("s", "li"), ("li", "if"), ("if", "out"))),
        bad=None, needles=("'w'", "'s'"), check=_finite))
    cases.append(Case("file", "graph:cycle through neuron", _edit(ws, "li_if", _edges(
        ("in", "w"), ("w", "li"), ("li", "s"), ("s", "w"), ("s", "if"), ("if", "out"))),
        bad=None, needles=(), check=_finite))
    # nested graph damage
    for name, edit, bad, needles in [
        ("sub edges missing", _set("node/nodes/sub/edges", None), True, ("sub",)),
        ("sub nodes empty", lambda f: (f.__delitem__("node/nodes/sub/nodes"),
                                       f.create_group("node/nodes/sub/nodes")), True, ("sub",)),
        ("sub edge to missing", _set("node/nodes/sub/edges",
                                     np.array([["i", "w"], ["w", "ghost"]], dtype="S")),
         True, ("ghost",)),
        ("outer edge into missing sub node", _set("node/edges", np.array(
            [["in", "sub.zz"], ["sub.o", "lif"], ["lif", "out"]], dtype="S")), True,
         ("sub.zz", "zz")),
        ("sub weight nan", _set("node/nodes/sub/nodes/w/weight", np.full((3, 3), np.nan)),
         True, ("sub/w", "'w'")),
        ("sub type garbage", _set("node/nodes/sub/type", "Foo"), True, ("sub",)),
    ]:
        cases.append(Case("file", f"nested:{name}", _edit(ws, "nested", edit), bad=bad,
                          needles=needles, check=_finite))
    return cases


def _finite(out) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(out))


# ---------------------------------------------------------------------------- wrong files
def _file_kinds(ws) -> dict[str, str]:
    """Paths of files that are not .nir graphs."""
    d = os.path.join(ws.root, "kinds")
    os.makedirs(d, exist_ok=True)
    kinds = {}
    kinds["missing"] = os.path.join(d, "missing.nir")
    kinds["empty"] = os.path.join(d, "empty.nir")
    open(kinds["empty"], "w").close()
    kinds["text"] = os.path.join(d, "text.nir")
    with open(kinds["text"], "w") as f:
        f.write("this is not hdf5\n")
    kinds["npy"] = os.path.join(d, "data.npy")
    np.save(kinds["npy"], np.ones((2, 3), np.float32))
    kinds["dir"] = os.path.join(d, "folder.nir")
    os.makedirs(kinds["dir"], exist_ok=True)
    kinds["h5 no graph"] = os.path.join(d, "data.h5")
    with h5py.File(kinds["h5 no graph"], "w") as f:
        f["x"] = np.ones(3)
    kinds["truncated"] = os.path.join(d, "truncated.nir")
    with open(ws.base["lif"], "rb") as a, open(kinds["truncated"], "wb") as b:
        data = a.read()
        b.write(data[: len(data) // 2])
    kinds["single node"] = os.path.join(d, "single.nir")
    nir.write(kinds["single node"], nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                            v_threshold=np.ones(2), v_reset=np.zeros(2)))
    return kinds


# ---------------------------------------------------------------------------- API cases
def raw(cls, **fields):
    """A NIR node with `fields` as given, without NIR's own constructor checks (as a user gets
    by changing a node's attribute after building it): nirjax must check them itself."""
    node = object.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in fields:
            value = fields[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        object.__setattr__(node, f.name, value)
    if cls is nir.Flatten and isinstance(node.input_type, dict):
        object.__setattr__(node, "output_type", {"output": None})
    return node


_LIF3 = dict(tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
             v_reset=np.zeros(3))


def _g(n=3):
    return nirjax.from_nir(_chain({"w": nir.Linear(weight=np.eye(n)), "lif": _lif(n)}, (n,)),
                           dt=DT)


def _ref_lif(x, tau=0.02, dt=DT):
    """Independent numpy LIF (identity weight, forward Euler, reset to 0), float32."""
    v = np.zeros(x.shape[1:], np.float32)
    a = np.float32(dt / tau)
    out = []
    for xt in np.asarray(x, np.float32):
        v = v + a * (-v + xt)
        z = (v > 1).astype(np.float32)
        v = v * (1 - z)
        out.append(z)
    return np.stack(out)


def api_cases(ws) -> list[Case]:
    g = _g()
    kinds = _file_kinds(ws)
    x = np.full((8, 3), 3.0, np.float32)
    x[2] = 30.0
    good = lambda y: np.array_equal(np.asarray(y), _ref_lif(x))  # noqa: E731
    src = _chain({"w": nir.Linear(weight=np.eye(3)), "lif": _lif(3)}, (3,))
    cases: list[Case] = []

    def add(name, fn, bad=True, needles=(), check=None):
        cases.append(Case("api", name, fn, bad=bad, needles=tuple(needles), check=check))

    # from_nir: sources, dtypes, options
    for label, s in [("int", 3), ("None", None), ("list", [1, 2]), ("dict", {"in": 1}),
                     ("nir node", nir.Linear(weight=np.eye(2))), ("bytes", b"x.nir"),
                     ("Graph", g)]:
        add(f"from_nir(src={label})", lambda s=s: nirjax.from_nir(s, dt=DT),
            needles=("from_nir", "NIRGraph"))
    for label, p in kinds.items():
        add(f"from_nir(path={label})", lambda p=p: nirjax.from_nir(p, dt=DT), needles=(p,))
        add(f"load(path={label})", lambda p=p: nirjax.load(p, dt=DT), needles=(p,))
        add(f"read(path={label})", lambda p=p: nirjax.read(p), needles=(p,))
    for label, dt in [("int32", jnp.int32), ("bool", bool), ("str", "float"), ("complex",
                      jnp.complex64), ("None-like", "nothing"), ("float64 no x64", jnp.float64)]:
        add(f"from_nir(dtype={label})", lambda dt=dt: nirjax.from_nir(src, dt=DT, dtype=dt),
            needles=("dtype",))
    for label, v in [("0", 0), ("-1", -1.0), ("nan", np.nan), ("inf", np.inf), ("True", True),
                     ("str", "1e-3"), ("1e-300", 1e-300), ("1e9", 1e9), ("array", np.ones(2)),
                     ("complex", 1e-3 + 0j), ("None", None)]:
        add(f"from_nir(dt={label})", lambda v=v: nirjax.from_nir(src, dt=v), needles=("dt",))
    for opt, v in [("reset", "sideways"), ("reset", 3), ("discretization", "rk4"),
                   ("discretization", 1), ("surrogate", "nope"), ("surrogate_scale", -1.0),
                   ("surrogate_scale", np.nan), ("detach_reset", "yes"), ("detach_reset", 1),
                   ("delay_rounding", "true"), ("input_mode", "voltage?"), ("cuba_order", "x"),
                   ("gradient", "magic"), ("spikes_per_step", "many"), ("bogus", 1),
                   ("threshold_comparison", ">"), ("spike_order", 3)]:
        add(f"from_nir({opt}={v!r})", lambda opt=opt, v=v: nirjax.from_nir(src, dt=DT, **{opt: v}),
            needles=(opt,))
    add("from_nir(node_options ghost)", lambda: nirjax.from_nir(
        src, dt=DT, node_options={"ghost": {"reset": "zero"}}), needles=("ghost",))
    add("from_nir(node_options bad value)", lambda: nirjax.from_nir(
        src, dt=DT, node_options={"lif": {"reset": "zzz"}}), needles=("lif", "reset"))
    add("from_nir(node_options not dict)", lambda: nirjax.from_nir(
        src, dt=DT, node_options={"lif": 3}), needles=("lif", "node_options"))
    add("from_nir(node_options bad name)", lambda: nirjax.from_nir(
        src, dt=DT, node_options={"lif": {"bogus": 1}}), needles=("bogus",))

    # graph construction problems given as nir objects
    def graph(nodes, edges):
        return lambda: nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False),
                                       dt=DT)
    i3, o3 = nir.Input(input_type={"input": np.array([3])}), nir.Output(
        output_type={"output": np.array([3])})
    add("graph: no Output", lambda: graph({"in": i3, "lif": _lif(3)}, [("in", "lif")])()(x),
        needles=("Output",))
    add("graph: no Input", graph({"lif": _lif(3), "out": o3}, [("lif", "out")]),
        needles=("Input", "'lif'"))
    add("graph: empty", graph({}, []), needles=("Input", "Output", "empty", "node"))
    add("graph: name with /", graph({"in": i3, "a/b": _lif(3), "out": o3},
                                    [("in", "a/b"), ("a/b", "out")]), needles=("a/b",))
    add("graph: empty name", graph({"in": i3, "": _lif(3), "out": o3},
                                   [("in", ""), ("", "out")]), needles=("''", "name"))
    add("graph: name '.'", graph({"in": i3, ".": _lif(3), "out": o3},
                                 [("in", "."), (".", "out")]), needles=("'.'",))
    add("graph: name with .", graph({"in": i3, "a.b": _lif(3), "out": o3},
                                    [("in", "a.b"), ("a.b", "out")]), bad=None,
        needles=("a.b",), check=lambda gr: gr(np.ones((2, 3), np.float32)).shape == (2, 3))
    add("graph: name not str", graph({"in": i3, 5: _lif(3), "out": o3},
                                     [("in", 5), (5, "out")]), needles=("5",))
    add("graph: unicode name", graph({"in": i3, "ü": _lif(3), "out": o3},
                                     [("in", "ü"), ("ü", "out")]), bad=False,
        check=lambda gr: np.array_equal(np.asarray(gr(x)), _ref_lif(x)))
    add("graph: shape mismatch", graph({"in": i3, "w": nir.Linear(weight=np.ones((4, 4))),
                                        "out": o3}, [("in", "w"), ("w", "out")]),
        needles=("'w'",))
    add("graph: Output type wrong", graph({"in": i3, "w": nir.Linear(weight=np.ones((4, 3))),
                                           "out": o3}, [("in", "w"), ("w", "out")]),
        needles=("'out'", "'w'"))
    add("graph: two inputs to Linear", graph(
        {"in": i3, "in2": nir.Input(input_type={"input": np.array([3])}),
         "w": nir.Linear(weight=np.eye(3)), "out": o3},
        [("in", "w"), ("in2", "w"), ("w", "out")]), bad=False,
        check=lambda gr: np.allclose(np.asarray(gr({"in": np.ones((2, 3), np.float32),
                                                    "in2": np.ones((2, 3), np.float32)})),
                                     2.0))
    add("graph: tuple edge of 3", graph({"in": i3, "out": o3}, [("in", "out", "x")]),
        needles=("edge",))
    add("graph: edges not list", graph({"in": i3, "out": o3}, "in->out"), needles=("edge",))
    add("graph: nodes not dict", lambda: nirjax.from_nir(
        raw(nir.NIRGraph, nodes=[i3, o3], edges=[]), dt=DT), needles=("nodes",))
    for label, w in [("nan", np.full((3, 3), np.nan)), ("inf", np.full((3, 3), np.inf)),
                     ("1e39", np.full((3, 3), 1e39)), ("bool", np.ones((3, 3), bool)),
                     ("complex", np.ones((3, 3), complex)), ("str", np.full((3, 3), "a")),
                     ("object", np.array([[None] * 3] * 3)), ("1-d", np.ones(3)),
                     ("3-d", np.ones((1, 3, 3))), ("empty", np.ones((0, 3))),
                     ("list", [[1.0] * 3] * 3)]:
        add(f"Linear(weight={label})", graph({"in": i3, "w": raw(nir.Linear, weight=w), "out": o3},
                                             [("in", "w"), ("w", "out")]),
            bad=False if label == "list" else True, needles=("'w'",),
            check=lambda gr: gr(np.ones((2, 3), np.float32)).shape == (2, 3))
    for field, vals in [("tau", (0.0, -0.01, np.nan, True, 1e-50, np.inf)),
                        ("r", (np.nan, np.inf)), ("v_threshold", (np.nan, -np.inf)),
                        ("v_leak", (np.nan,)), ("v_reset", (np.inf,))]:
        for v in vals:
            add(f"LIF({field}={v!r})", graph({"in": i3, "lif": raw(nir.LIF, **{**_LIF3, field: np.full(3, v)}),
                                              "out": o3}, [("in", "lif"), ("lif", "out")]),
                needles=("'lif'",))
    add("LIF(tau shape 4)", graph({"in": i3, "lif": raw(nir.LIF, **{**_LIF3, "tau": np.full(4, .02)}), "out": o3},
                                  [("in", "lif"), ("lif", "out")]), needles=("'lif'",))
    for label, kw in [("stride 0", dict(stride=0)), ("stride -1", dict(stride=-1)),
                      ("padding -1", dict(padding=-1)), ("dilation 0", dict(dilation=0)),
                      ("groups 0", dict(groups=0)), ("groups 2", dict(groups=2)),
                      ("stride 1.5", dict(stride=1.5)), ("padding str", dict(padding="same!"))]:
        base = dict(input_shape=None, weight=np.ones((2, 1, 2, 2)), stride=1, padding=0,
                    dilation=1, groups=1, bias=np.zeros(2))
        base.update(kw)
        add(f"Conv2d({label})", graph({"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
                                       "c": raw(nir.Conv2d, **base), "out": nir.Output(
                                           output_type={"output": None})},
                                      [("in", "c"), ("c", "out")]), needles=("'c'",))
    for label, kw in [("start 0.5", dict(start_dim=0.5)), ("start 5", dict(start_dim=5)),
                      ("end before start", dict(start_dim=1, end_dim=0)),
                      ("start str", dict(start_dim="0"))]:
        add(f"Flatten({label})", graph(
            {"in": nir.Input(input_type={"input": np.array([2, 3])}),
             "f": raw(nir.Flatten, input_type={"input": np.array([2, 3])}, **kw),
             "out": nir.Output(output_type={"output": None})}, [("in", "f"), ("f", "out")]),
            needles=("'f'",))
    for label, d in [("neg", -1e-3), ("nan", np.nan), ("1e9", 1e9), ("frac", 1.5e-3)]:
        add(f"Delay({label})", graph({"in": i3, "d": raw(nir.Delay, delay=np.full(3, d)), "out": o3},
                                     [("in", "d"), ("d", "out")]), needles=("'d'",))
    add("Input(shape 1e13)", graph({"in": nir.Input(input_type={"input": np.array([10**13])}),
                                    "out": nir.Output(output_type=None)}, [("in", "out")]),
        needles=("'in'",))
    add("Input(shape negative)", graph({"in": nir.Input(input_type={"input": np.array([-3])}),
                                        "out": nir.Output(output_type=None)}, [("in", "out")]),
        needles=("'in'",))
    add("Input(shape float 3.0)", graph(
        {"in": nir.Input(input_type={"input": np.array([3.0])}), "w": nir.Linear(
            weight=np.eye(3)), "out": nir.Output(output_type=None)},
        [("in", "w"), ("w", "out")]), bad=False,
        check=lambda gr: gr(np.ones((2, 3), np.float32)).shape == (2, 3))
    add("Input(shape 3.5)", graph({"in": nir.Input(input_type={"input": np.array([3.5])}),
                                   "out": nir.Output(output_type=None)}, [("in", "out")]),
        needles=("'in'",))

    # running: inputs, state, record
    add("run ok", lambda: g(x), bad=False, check=good)
    add("run list", lambda: g(x.tolist()), bad=False, check=good)
    add("run float64", lambda: g(x.astype(np.float64)), bad=False, check=good)
    for label, xx in [("int", x.astype(np.int32)), ("bool", x > 0),
                      ("complex", x.astype(np.complex64)), ("str", x.astype(str)),
                      ("1-d", x[0]), ("0-d", np.float32(1)), ("transposed", x.T),
                      ("extra axis", x[:, None]), ("wrong width", np.ones((8, 4), np.float32)),
                      ("T=0", np.ones((0, 3), np.float32)), ("None", None),
                      ("dict wrong key", {"zzz": x}), ("object", np.array([None] * 3)),
                      ("jax int", jnp.ones((4, 3), jnp.int32))]:
        add(f"run(x={label})", lambda xx=xx: g(xx), needles=("input", "'in'", "x"))
    add("run(x float64 over float32 max)", lambda: g(np.full((4, 3), 1e39)),
        needles=("'in'", "input"))
    add("run(x float16)", lambda: g(x.astype(np.float16)), bad=False, check=good)
    for label, pos in [("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)]:
        bad_x = x.copy()
        bad_x[5, 1] = pos
        add(f"run(x with {label})", lambda bad_x=bad_x: g(bad_x), needles=("step 5",))
    other = _g(4)
    for label, st in [("other graph", lambda: other.init_state()), ("empty dict", lambda: {}),
                      ("int", lambda: 3), ("nan state", lambda: jax.tree.map(
                          lambda a: jnp.full_like(a, jnp.nan), g.init_state())),
                      ("wrong dtype", lambda: jax.tree.map(
                          lambda a: a.astype(jnp.int32), g.init_state()))]:
        add(f"run(state={label})", lambda st=st: g.run(x, state=st()),
            needles=("state",))
    add("run(state=own)", lambda: g.run(x, state=g.init_state()).output, bad=False, check=good)
    add("run(record='lif')", lambda: g.run(x, record="lif").record["lif"]["output"], bad=False,
        check=good)  # one name as a string
    for label, rec in [("int", [5]), ("ghost", ["ghost"]), ("None item", [None]),
                       ("bad var", ["lif.zz"])]:
        add(f"run(record={label})", lambda rec=rec: g.run(x, record=rec), needles=("record",))
    add("run(record=[lif])", lambda: g.run(x, record=["lif"]).record["lif"]["output"], bad=False,
        check=good)
    for label, xb in [("list", x[None].tolist()), ("array", x[None])]:
        add(f"simulate({label})", lambda xb=xb: nirjax.simulate(g, xb).output, bad=False,
            check=lambda y: np.array_equal(np.asarray(y)[0], _ref_lif(x)))
    for label, kw in [("batch 0", dict(batch_size=0)), ("batch -1", dict(batch_size=-1)),
                      ("batch 1.5", dict(batch_size=1.5)), ("batch True", dict(batch_size=True)),
                      ("batch str", dict(batch_size="4"))]:
        add(f"simulate({label})", lambda kw=kw: nirjax.simulate(g, x[None], **kw),
            needles=("batch_size",))
    for label, xb in [("int", 3), ("no batch axis", x), ("wrong width", np.ones((2, 8, 4))),
                      ("nan", np.full((2, 8, 3), np.nan, np.float32)), ("bool", x[None] > 0)]:
        add(f"simulate(x={label})", lambda xb=xb: nirjax.simulate(g, xb).output,
            needles=("input", "simulate", "step", "'in'"))
    add("simulate(graph=str)", lambda: nirjax.simulate("g.nir", x[None]),
        needles=("simulate", "Graph"))

    # simulate_hdf5
    def h5(data=None, key="in", out_ok=True, **kw):
        def run():
            d = os.path.dirname(ws.scratch())
            src_path = os.path.join(d, "in.h5")
            with h5py.File(src_path, "w") as f:
                if data is not None:
                    f[key] = data
            out = os.path.join(d, "out.h5") if out_ok else os.path.join(d, "nodir", "x",
                                                                       "out.h5")
            if not out_ok:
                open(os.path.join(d, "nodir"), "w").close()
            return nirjax.simulate_hdf5(g, src_path, out, **kw)
        return run
    add("simulate_hdf5(batch 0)", h5(x[None], batch_size=0), needles=("batch_size",))
    add("simulate_hdf5(no dataset)", h5(None), needles=("in.h5", "'in'"))
    # documented: the file's only dataset feeds a graph's only Input
    add("simulate_hdf5(only dataset)", h5(x[None], key="zz"), bad=False, check=lambda r: True)
    add("simulate_hdf5(wrong shape)", h5(np.ones((2, 8, 4), np.float32)), needles=("'in'",))
    add("simulate_hdf5(str data)", h5(np.array([b"a", b"b"])), needles=("'in'",))
    add("simulate_hdf5(out unwritable)", h5(x[None], out_ok=False), needles=("out.h5",))
    add("simulate_hdf5(missing input)", lambda: nirjax.simulate_hdf5(
        g, kinds["missing"], os.path.join(ws.root, "o.h5")), needles=(kinds["missing"],))
    add("simulate_hdf5(input is dir)", lambda: nirjax.simulate_hdf5(
        g, kinds["dir"], os.path.join(ws.root, "o.h5")), needles=(kinds["dir"],))

    # with_options / with_execution
    for label, kw in [("dt -1", dict(dt=-1.0)), ("dt nan", dict(dt=np.nan)),
                      ("dt True", dict(dt=True)), ("bogus", dict(bogus=1)),
                      ("reset bad", dict(reset="zz")), ("surrogate bad", dict(surrogate=3)),
                      ("dt str", dict(dt="1e-3"))]:
        add(f"with_options({label})", lambda kw=kw: g.with_options(**kw),
            needles=tuple(kw))
    add("with_options(dt=2e-3) ok", lambda: g.with_options(dt=2e-3)(x), bad=False,
        check=lambda y: np.array_equal(np.asarray(y), _ref_lif(x, dt=2e-3)))
    for label, kw in [("checkpoint -1", dict(checkpoint=-1)), ("checkpoint 0", dict(checkpoint=0)),
                      ("checkpoint 1.5", dict(checkpoint=1.5)),
                      ("check_finite str", dict(check_finite="yes")),
                      ("check_finite int", dict(check_finite=1)), ("bogus", dict(bogus=True)),
                      ("unroll 0", dict(unroll=0))]:
        add(f"with_execution({label})", lambda kw=kw: g.with_execution(**kw)(x),
            needles=tuple(kw))
    # more API entry points
    for label, obj in [("int", 3), ("nir graph", src), ("str", "g.nir")]:
        add(f"to_nir({label})", lambda obj=obj: nirjax.to_nir(obj), needles=("to_nir", "Graph"))
    for label, tgt in [("bogus", "bogus"), ("int", 3), ("None", None)]:
        add(f"check(target={label})", lambda tgt=tgt: nirjax.check(g, tgt),
            needles=("target", repr(tgt)))
        add(f"fixed_point(target={label})", lambda tgt=tgt: nirjax.fixed_point(g, tgt),
            needles=("target", repr(tgt)), bad=True if tgt is not None else None,
            check=lambda r: r is not None)
    add("check(graph=int)", lambda: nirjax.check(3, "xylo"), needles=("graph", "int"))
    for label, kw in [("time_chunk 0", dict(time_chunk=0)), ("time_chunk -2", dict(time_chunk=-2)),
                      ("record ghost", dict(record=["ghost"])), ("devices []", dict(devices=[])),
                      ("state other", dict(state=jax.tree.map(lambda a: a[None],
                                                              _g(4).init_state())))]:
        add(f"simulate({label})", lambda kw=kw: nirjax.simulate(g, x[None], **kw).output,
            needles=tuple(k for k in kw) + ("state", "record", "devices"))
    add("simulate(time_chunk=3) ok", lambda: nirjax.simulate(g, x[None], time_chunk=3).output,
        bad=False, check=lambda y: np.array_equal(np.asarray(y)[0], _ref_lif(x)))
    add("from_nir(Path)", lambda: nirjax.from_nir(__import__("pathlib").Path(ws.base["lif"])),
        bad=False, check=lambda gr: gr(np.ones((2, 3), np.float32)).shape == (2, 3))
    add("from_nir(float16 weight 1e5)", lambda: nirjax.from_nir(
        _chain({"w": nir.Linear(weight=np.full((3, 3), 1e5))}, (3,)), dt=DT,
        dtype=jnp.float16), needles=("'w'",))
    for label, pad in [("same", "same"), ("valid", "valid"), ("bogus", "bogus")]:
        add(f"Conv2d(padding={label})", graph(
            {"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
             "c": raw(nir.Conv2d, input_shape=None, weight=np.ones((1, 1, 3, 3)), stride=1,
                      padding=pad, dilation=1, groups=1, bias=np.zeros(1)),
             "out": nir.Output(output_type={"output": None})}, [("in", "c"), ("c", "out")]),
            bad=True if label == "bogus" else None, needles=("'c'",),
            check=lambda gr: gr(np.ones((2, 1, 4, 4), np.float32)).shape
            in ((2, 1, 4, 4), (2, 1, 2, 2)))
    def sub3():
        return nir.NIRGraph(nodes={"b": nir.Input(input_type={"input": np.array([3])}),
                                   "w": nir.Linear(weight=np.eye(3) * 2),
                                   "o": nir.Output(output_type={"output": np.array([3])})},
                            edges=[("b", "w"), ("w", "o")], type_check=False)
    add("graph: node name equal to a subgraph port", graph(
        {"in": i3, "a": sub3(), "a.b": _lif(3), "out": o3, "out2": nir.Output(
            output_type={"output": np.array([3])})},
        [("in", "a.b"), ("in", "a"), ("a.b", "out"), ("a", "out2")]), needles=("a.b",))
    add("graph: one connection spelled twice", graph(
        {"in": i3, "a": sub3(), "out": o3}, [("in", "a"), ("in", "a.b"), ("a", "out")]),
        needles=("'a'", "a.b"))
    add("graph: subgraph port named", graph(
        {"in": i3, "a": sub3(), "out": o3}, [("in", "a.b"), ("a.o", "out")]), bad=False,
        check=lambda gr: np.array_equal(np.asarray(gr(x)), 2 * x))
    for label, name in [("unicode", "ä-ß"), ("space", "a b"), ("long", "n" * 200),
                        ("dots", "x.y")]:
        def rt(name=name):
            gr = nirjax.from_nir(_chain({name: nir.Linear(weight=np.eye(3) * 3)}, (3,)), dt=DT)
            path = ws.scratch()
            nirjax.write(path, gr)
            back = nirjax.load(path)
            return back, gr
        add(f"round trip name {label}", rt, bad=False,
            check=lambda r, name=name: name in r[0].nodes and np.array_equal(
                np.asarray(r[0](x)), 3 * x) and np.array_equal(
                np.asarray(r[0].nodes[name].weight), np.asarray(r[1].nodes[name].weight)))
    add("graph: Output without edge", graph(
        {"in": i3, "w": nir.Linear(weight=np.eye(3)), "out": o3,
         "out2": nir.Output(output_type={"output": np.array([3])})},
        [("in", "w"), ("w", "out")]), needles=("'out2'",))
    add("graph: edge into non-graph port", graph(
        {"in": i3, "w": nir.Linear(weight=np.eye(3)), "out": o3},
        [("in", "w.x"), ("w", "out")]), needles=("w.x",))
    add("graph: Delay shape 2 on 3", graph(
        {"in": i3, "d": nir.Delay(delay=np.full(2, 1e-3)), "out": o3},
        [("in", "d"), ("d", "out")]), needles=("'d'",))
    add("graph: LIF params shape disagree", graph(
        {"in": i3, "lif": raw(nir.LIF, **{**_LIF3, "r": np.ones(2)}), "out": o3},
        [("in", "lif"), ("lif", "out")]), needles=("'lif'",))
    add("graph: Threshold nan", graph(
        {"in": i3, "t": raw(nir.Threshold, threshold=np.full(3, np.nan)), "out": o3},
        [("in", "t"), ("t", "out")]), needles=("'t'",))
    add("graph: Scale str", graph(
        {"in": i3, "s": raw(nir.Scale, scale="two"), "out": o3},
        [("in", "s"), ("s", "out")]), needles=("'s'",))
    add("graph: Affine bias 1x3", graph(
        {"in": i3, "a": raw(nir.Affine, weight=np.eye(3), bias=np.ones((1, 3))), "out": o3},
        [("in", "a"), ("a", "out")]), needles=("'a'",))
    add("graph: unknown node object", graph({"in": i3, "z": object(), "out": o3},
                                           [("in", "z"), ("z", "out")]), needles=("'z'",))
    add("init_state(bogus shape)", lambda: g.init_state("bogus"), needles=("init_state",
                                                                            "input_shape"),
        bad=None, check=lambda st: True)
    add("with_execution(checkpoint=3) ok", lambda: g.with_execution(checkpoint=3)(x), bad=False,
        check=good)

    # write
    for label, target in [("dir", lambda: kinds["dir"]),
                          ("under a file", lambda: os.path.join(kinds["empty"], "x.nir")),
                          ]:
        add(f"write(path={label})", lambda target=target: nirjax.write(target(), g),
            needles=(os.path.basename(target()), "x.nir", "folder.nir"))
    missing = os.path.join(ws.root, "no", "such", "x.nir")  # folders are made, as documented
    add("write(path=missing folder)", lambda: (nirjax.write(missing, g), nirjax.load(missing))[1],
        bad=False, check=lambda back: np.array_equal(np.asarray(back(x)), _ref_lif(x)))
    for label, obj in [("int", 3), ("None", None), ("nir graph", src), ("array", np.ones(3))]:
        add(f"write(graph={label})", lambda obj=obj: nirjax.write(ws.scratch(), obj),
            bad=False if label == "nir graph" else True, needles=("write", "Graph"),
            check=lambda r: True)
    def with_meta(meta, node_meta=None):
        m = _chain({"w": nir.Linear(weight=np.eye(3), metadata=node_meta or {}),
                    "lif": _lif(3)}, (3,))
        m.metadata = meta
        return m

    def round_trip(meta, node_meta=None):
        path = ws.scratch()
        nirjax.write(path, nirjax.from_nir(with_meta(meta, node_meta), dt=DT))
        back = nirjax.read(path)
        user = {k: v for k, v in back.metadata.items() if not k.startswith("nirjax_")}
        return user, back.nodes["w"].metadata

    def same(a, b):
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(
                same(a[k], b[k]) for k in a)
        return np.array_equal(np.asarray(a, dtype=object if isinstance(a, list) else None),
                              np.asarray(b)) and type(a) is not bytes
    meta = {"tags": ["a", "b"], "n": 3, "x": 1.5, "nested": {"k": [1, 2], "s": "v"}}
    add("write metadata round trip", lambda: round_trip(meta, {"names": ["x"], "u": "ü"}),
        bad=False, check=lambda r: same(meta, r[0]) and same({"names": ["x"], "u": "ü"}, r[1]))
    for label, m in [("None", {"none": None}), ("nested None", {"a": {"b": None}}),
                     ("object", {"o": object()})]:
        add(f"write metadata {label}", lambda m=m: nirjax.write(ws.scratch(), with_meta(m)),
            needles=("metadata",))
        add(f"write node metadata {label}", lambda m=m: nirjax.write(
            ws.scratch(), with_meta({}, m)), needles=("nodes/w/metadata",))
    import equinox as eqx
    nan_g = eqx.tree_at(lambda m: m.nodes["w"].weight, g, jnp.full((3, 3), jnp.nan))
    add("write(nan weights)", lambda: nirjax.write(ws.scratch(), nan_g), needles=("'w'",))
    add("run(nan weights graph)", lambda: nan_g(x), needles=("'w'", "node"))
    inf_g = eqx.tree_at(lambda m: m.nodes["lif"].tau, g, jnp.full(3, jnp.inf))
    add("write(inf tau)", lambda: nirjax.write(ws.scratch(), inf_g), needles=("'lif'",))
    return cases


# ---------------------------------------------------------------------------- CLI cases
def _cli(argv: list[str]) -> Callable[[], int]:
    from nirjax._cli import main
    return lambda: main([str(a) for a in argv])


def cli_cases(ws) -> list[Case]:
    kinds = _file_kinds(ws)
    g = ws.base["lif"]
    d = os.path.join(ws.root, "cli")
    os.makedirs(d, exist_ok=True)
    npy = os.path.join(d, "in.npy")
    np.save(npy, (np.random.default_rng(0).uniform(size=(2, 6, 3)) < 0.5).astype(np.float32))
    npy_t = os.path.join(d, "in_t.npy")
    np.save(npy_t, np.ones((2, 6, 1, 3), np.float32))
    npy_nan = os.path.join(d, "nan.npy")
    arr = np.ones((2, 6, 3), np.float32)
    arr[1, 4, 2] = np.nan
    np.save(npy_nan, arr)
    npy_int = os.path.join(d, "int.npy")
    np.save(npy_int, np.ones((2, 6, 3), np.int64))
    npy_obj = os.path.join(d, "obj.npy")
    np.save(npy_obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out = os.path.join(d, "out.npy")
    one = os.path.join(d, "one.npy")  # compare runs one sample: (steps, neurons)
    np.save(one, (np.random.default_rng(1).uniform(size=(6, 3)) < 0.5).astype(np.float32))
    afile = kinds["empty"]
    cases: list[Case] = []

    def add(name, argv, bad=True, needles=(), check=None, fast=True):
        cases.append(Case("cli", name, _cli(argv), bad=bad, needles=tuple(needles),
                          check=check, cli=True, fast=fast))

    add("no command", [], needles=("COMMAND", "command"))
    add("unknown command", ["frobnicate"], needles=("frobnicate",))
    xs = np.load(npy)

    def out_is(path):
        # base graph "lif": Affine(2 I, 0.1) -> LIF (tau 20 ms, r 1, threshold 1, reset 0)
        want = np.stack([_ref_lif(2 * s + np.float32(0.1)) for s in xs])
        return lambda _stdout: np.array_equal(np.load(path), want)
    for bs in ("1", "2", "32"):
        o = os.path.join(d, f"out-bs{bs}.npy")
        add(f"run ok batch {bs}", ["run", g, "--input", npy, "--output", o, "--batch-size", bs],
            bad=False, check=out_is(o))
    add("run ok", ["run", g, "--input", npy, "--output", out], bad=False, check=out_is(out))
    paths = {label: p for label, p in kinds.items() if label != "single node"}
    paths["single node"] = kinds["single node"]
    for label, p in paths.items():
        add(f"run graph={label}", ["run", p, "--input", npy, "--output", out], needles=(p,))
        add(f"info graph={label}", ["info", p], needles=(p,))
        add(f"check graph={label}", ["check", p, "--target", "xylo"], needles=(p,))
        add(f"compare graph={label}", ["compare", p, "--input", npy], needles=(p,))
        add(f"calibrate graph={label}", ["calibrate", p, npy, "--out",
                                         os.path.join(d, "f.nir")], needles=(p, npy))
        add(f"characterize graph={label}", ["characterize", p, "--recording", npy],
            needles=(p, "--recording", npy))
    for label, p in [("missing", kinds["missing"]), ("empty", kinds["empty"]),
                     ("text", kinds["text"]), ("dir", kinds["dir"]), ("nir", g),
                     ("h5", kinds["h5 no graph"]), ("transposed", npy_t), ("nan", npy_nan),
                     ("object", npy_obj)]:
        add(f"run input={label}", ["run", g, "--input", p, "--output", out],
            needles=(p, "'in'", "input", "--input"))
        add(f"compare input={label}", ["compare", g, "--input", p],
            needles=(p, "'in'", "input", "--input"))
    add("run input=int", ["run", g, "--input", npy_int, "--output", out], bad=None,
        needles=("int", "--input"))
    for label, o in [("dir", kinds["dir"]), ("under file", os.path.join(afile, "o.npy")),
                     ("missing folder", os.path.join(d, "no", "such", "o.npy")),
                     ("bad suffix", os.path.join(d, "o.txt"))]:
        add(f"run output={label}", ["run", g, "--input", npy, "--output", o],
            needles=(o, "--output"), bad=label != "bad suffix")  # .txt: a NIR data file
        add(f"calibrate out={label}", ["calibrate", g, npy, "--out", o],
            needles=(o, "--out", npy))
        # train's --out is a folder, made if missing
        add(f"train out={label}", ["train", "--out", o, "--epochs", "1", "--limit", "64"],
            needles=(o, "--out"), bad=False if label in ("dir", "missing folder") else True,
            fast=label not in ("dir", "missing folder"))  # those train for real
    for cmd in (["run", g, "--input", npy, "--output", out], ["compare", g, "--input", npy],
                ["info", g], ["check", g, "--target", "xylo"]):
        name = cmd[0]
        for flag, v in [("--dt", "-1"), ("--dt", "nan"), ("--dt", "0"), ("--dt", "x"),
                        ("--dt", "1e400"), ("--bogus", "1")] + (
                            [("--dt", "2e-3")] if name != "check" else []):
            add(f"{name} {flag}={v}", cmd + [f"{flag}={v}"], needles=(flag, "dt"))
    for flag, v in [("--batch-size", "0"), ("--batch-size", "-1"), ("--batch-size", "1.5"),
                    ("--reset", "bogus"), ("--discretization", "rk9"), ("--surrogate", "zz"),
                    ("--input-mode", "x")]:
        add(f"run {flag}={v}", ["run", g, "--input", npy, "--output", out, f"{flag}={v}"],
            needles=(flag, v))
    add("run missing --input", ["run", g, "--output", out], needles=("--input",))
    add("run missing --output", ["run", g, "--input", npy], needles=("--output",),
        bad=None)
    for flag, v in [("--window", "-1"), ("--window", "nan"), ("--rtol", "2"), ("--atol", "-1"),
                    ("--max-spikes", "0"), ("--input-kind", "bogus")]:
        add(f"compare {flag}={v}", ["compare", g, "--input", npy, f"{flag}={v}"],
            needles=(flag,))
    add("check target bogus", ["check", g, "--target", "bogus"], needles=("--target", "bogus"))
    add("check no target", ["check", g], needles=("--target",), bad=None)
    for flag, v in [("--lr", "nan"), ("--lr", "0"), ("--prior", "-1"), ("--polish", "-1"),
                    ("--clip", "0"), ("--steps", "-1"), ("--multi-start", "0"),
                    ("--tolerance", "1"), ("--bounds", "inf")]:
        for cmd in ("fit", "calibrate"):
            add(f"{cmd} {flag}={v}", [cmd, g, npy, "--out", os.path.join(d, "f.nir"),
                                      f"{flag}={v}"], needles=(flag,))
    for label, p in [("missing", kinds["missing"]), ("empty", kinds["empty"]),
                     ("dir", kinds["dir"]), ("nir", g), ("npy", npy)]:
        add(f"calibrate recording={label}", ["calibrate", g, p, "--out",
                                             os.path.join(d, "f.nir")], needles=(p,))
        add(f"characterize recording={label}", ["characterize", g, "--recording", p],
            needles=(p, "--recording"))
    for flag, v in [("--epochs", "0"), ("--epochs", "-1"), ("--batch-size", "0"),
                    ("--lr", "nan"), ("--lr", "inf"), ("--dt", "0"), ("--hidden", "0"),
                    ("--hidden", "a,b"), ("--val-fraction", "1"), ("--val-fraction", "nan"),
                    ("--patience", "0"), ("--limit", "0"), ("--seed", "-1"),
                    ("--encoder", "bogus"), ("--neuron", "bogus"), ("--loss", "bogus"),
                    ("--downsample", "0"), ("--devices", "0"), ("--steps", "0")]:
        add(f"train {flag}={v}", ["train", f"{flag}={v}", "--out", os.path.join(d, "t")],
            needles=(flag,))
    add("run --batch-size huge", ["run", g, "--input", npy, "--output", out,
                                  "--batch-size", "99999999999"], bad=None, needles=("--batch",))
    for label, p in [("missing", kinds["missing"]), ("empty", kinds["empty"]),
                     ("dir", kinds["dir"]), ("nir", g), ("text", kinds["text"]),
                     ("h5 no data", kinds["h5 no graph"]), ("npy", npy)]:
        add(f"train dataset={label}", ["train", "--dataset", p, "--out",
                                       os.path.join(d, "t2"), "--epochs", "1"],
            needles=(p, "--dataset"))
    # inputs of the wrong layout or values at run time
    for label, data in [("2-d", np.ones((6, 3), np.float32)),
                        ("0 samples", np.ones((0, 6, 3), np.float32)),
                        ("0 steps", np.ones((2, 0, 3), np.float32)),
                        ("inf", np.full((2, 6, 3), np.inf, np.float32)),
                        ("complex", np.ones((2, 6, 3), np.complex64)),
                        ("bool", np.ones((2, 6, 3), bool)),
                        ("str", np.full((2, 6, 3), "a"))]:
        path = os.path.join(d, f"bad-{label.replace(' ', '_')}.npy")
        np.save(path, data)
        add(f"run input {label}", ["run", g, "--input", path, "--output", out],
            needles=(path, "--input", "'in'"), bad=None if label == "bool" else True)
    rec = os.path.join(d, "rec.csv")
    for label, text in [("text", "a,b\nc,d\n"), ("nan", "0,1\nnan,2\n"), ("ragged", "0,1\n2\n"),
                        ("header only", "# t,v\n")]:
        path = os.path.join(d, f"rec-{label.replace(' ', '_')}.csv")
        with open(path, "w") as f:
            f.write(text)
        add(f"characterize recording {label}", ["characterize", g, "--recording", path],
            needles=(path, "--recording"))
    for label, p in [("missing", kinds["missing"]), ("empty", kinds["empty"]),
                     ("dir", kinds["dir"]), ("graph file", g), ("npy", npy)]:
        add(f"compare recording={label}", ["compare", g, "--input", one, "--recording", p],
            needles=(p, "--recording"))
    for flag in ("--plot", "--json"):
        for label, o in [("dir", kinds["dir"]), ("under file", os.path.join(afile, "o"))]:
            add(f"compare {flag} {label}", ["compare", g, "--input", one, flag, o],
                needles=(o, flag))
    add("characterize --json under file", ["characterize", g, "--recording", rec, "--json",
                                           os.path.join(afile, "o.json")],
        needles=(os.path.join(afile, "o.json"), "--json", rec))
    add("train val-fraction 0.99 limit 8", ["train", "--val-fraction", "0.99", "--limit", "8",
                                            "--out", os.path.join(d, "t3"), "--epochs", "1"],
        needles=("--val-fraction", "--limit"))
    return cases


# ---------------------------------------------------------------------------- training cases
def training_cases(ws) -> list[Case]:
    import training

    n_in, n_out = 3, 2
    graph = nirjax.from_nir(training.feedforward_snn(n_in, n_out, hidden=(4,), dt=DT), dt=DT)
    rng = np.random.default_rng(0)
    X = (rng.uniform(size=(8, 5, n_in)) < 0.5).astype(np.float32)
    y = np.array([0, 1] * 4)
    cases: list[Case] = []

    def add(name, fn, needles=(), bad=True, check=None):
        cases.append(Case("training", name, fn, bad=bad, needles=tuple(needles), check=check))

    cfg = dict(epochs=1, batch_size=4)
    for kw, needle in [
        ({"grad_clip": -1}, "grad_clip"), ({"grad_clip": 0.0}, "grad_clip"),
        ({"grad_clip": np.nan}, "grad_clip"), ({"weight_decay": -1}, "weight_decay"),
        ({"weight_decay": np.inf}, "weight_decay"), ({"warmup_epochs": -5}, "warmup_epochs"),
        ({"warmup_epochs": 50, "epochs": 5}, "warmup_epochs"), ({"patience": 0}, "patience"),
        ({"patience": 2.5}, "patience"), ({"lr": np.inf}, "lr"), ({"lr": np.nan}, "lr"),
        ({"lr": 0}, "lr"), ({"lr": -1e-3}, "lr"), ({"lr": "0.1"}, "lr"),
        ({"lr": True}, "lr"), ({"reg_weight": np.nan}, "reg_weight"),
        ({"reg_weight": -1.0}, "reg_weight"), ({"target_rate": 2.0}, "target_rate"),
        ({"target_rate": -0.1}, "target_rate"), ({"van_rossum_tau": 0.0}, "van_rossum_tau"),
        ({"epochs": True}, "epochs"), ({"epochs": 0}, "epochs"), ({"epochs": -1}, "epochs"),
        ({"epochs": 1.5}, "epochs"), ({"batch_size": 1.5}, "batch_size"),
        ({"batch_size": 0}, "batch_size"), ({"batch_size": -4}, "batch_size"),
        ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"reg_mode": "sideways"}, "reg_mode"),
        ({"loss": "bogus"}, "loss"), ({"schedule": "zigzag"}, "schedule"),
        ({"eval_batch_size": 0}, "eval_batch_size"), ({"train": ("bogus",)}, "bogus"),
        ({"reg_nodes": ("ghost",), "reg_weight": 0.1}, "ghost"),
        ({"train_nodes": (("ghost", ("weight",)),)}, "ghost"),
        ({"freeze": (("ghost", ("weight",)),)}, "ghost"),
    ]:
        def run(kw=kw):
            config = training.TrainConfig(**{**cfg, **kw})
            return training.fit(graph, (X, y), config=config, progress=False)
        add(f"TrainConfig({kw})", run, needles=(needle,))
    Xn = X.copy()
    Xn[3, 2, 1] = np.nan
    for label, data, needle in [
        ("nan inputs", (Xn, y), "non-finite"), ("inf inputs", (np.where(X > 0, np.inf, 0), y), "non-finite"),
        ("label >= n_classes", (X, np.array([0, 1, 2, 1] * 2)), "label"),
        ("label -1", (X, np.array([0, -1] * 4)), "label"),
        ("float labels", (X, y.astype(float)), "label"),
        ("bool labels", (X, y.astype(bool)), "label"),
        ("str labels", (X, y.astype(str)), "label"),
        ("length mismatch", (X, y[:5]), "labels"),
        ("no time axis", (X[:, 0, 0], y), "inputs"), ("wrong width", (X[..., :2], y), "input"),
        ("extra axis", (X[..., None], y), "input"), ("empty", (X[:0], y[:0]), "no samples"),
        ("triple", (X, y, y), "pair"), ("dict", {"x": X}, "train"), ("None", None, "train"),
        ("str inputs", (X.astype(str), y), "input"),
        ("complex inputs", (X.astype(complex), y), "input"),
        ("targets nan", (X, np.full((8, 5, n_out), np.nan, np.float32)), "non-finite"),
        ("targets wrong shape", (X, np.zeros((8, 5, 7), np.float32)), "labels"),
    ]:
        add(f"fit(train={label})", lambda data=data: training.fit(
            graph, data, config=training.TrainConfig(**cfg), progress=False),
            needles=(needle,))
        add(f"evaluate({label})", lambda data=data: training.evaluate(graph, data),
            needles=(needle,))
    add("fit(val bad)", lambda: training.fit(graph, (X, y), (Xn, y),
                                             config=training.TrainConfig(**cfg), progress=False),
        needles=("non-finite", "val"))
    add("fit(graph=str)", lambda: training.fit("g.nir", (X, y), progress=False),
        needles=("graph",))
    add("evaluate(graph=nir)", lambda: training.evaluate(
        training.feedforward_snn(n_in, n_out, hidden=(4,), dt=DT), (X, y)), needles=("graph",))
    add("fit(out_dir is a file)", lambda: training.fit(
        graph, (X, y), config=training.TrainConfig(**cfg), progress=False,
        out_dir=_file_kinds(ws)["empty"]), needles=("empty.nir", "out_dir"))
    def damaged(content: bytes | None, meta: str | None = None):
        def run():
            out_dir = os.path.dirname(ws.scratch())
            if content is not None:
                with open(os.path.join(out_dir, "checkpoint.eqx"), "wb") as f:
                    f.write(content)
            if meta is not None:
                with open(os.path.join(out_dir, "metrics.json"), "w") as f:
                    f.write(meta)
            return training.fit(graph, (X, y), config=training.TrainConfig(**cfg),
                                progress=False, out_dir=out_dir)
        return run
    add("fit(resume empty checkpoint)", damaged(b""), needles=("checkpoint",))
    add("fit(resume garbage checkpoint)", damaged(b"garbage" * 100), needles=("checkpoint",))
    add("fit(resume garbage metrics)", damaged(b"garbage" * 100, "{not json"),
        needles=("checkpoint", "metrics"))
    def good_fit():
        out_dir = os.path.dirname(ws.scratch())
        r = training.fit(graph, (X, y), config=training.TrainConfig(**cfg), progress=False,
                         out_dir=out_dir)
        path = os.path.join(out_dir, "model.nir")
        nirjax.write(path, r.graph)
        back = nirjax.load(path)
        return r, back
    cases.append(Case("training", "fit ok, written and read back", good_fit, bad=False,
                      check=lambda rb: all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b
                                           in zip(jax.tree.leaves(eqx_params(rb[0].graph)),
                                                  jax.tree.leaves(eqx_params(rb[1])))),
                      fast=False))
    add("fit(stop_after=0)", lambda: training.fit(
        graph, (X, y), config=training.TrainConfig(**cfg), progress=False, stop_after=0),
        needles=("stop_after",))
    add("fit(devices=0)", lambda: training.fit(
        graph, (X, y), config=training.TrainConfig(**cfg), progress=False, devices=0),
        needles=("devices",))
    add("evaluate(batch 0)", lambda: training.evaluate(graph, (X, y), batch_size=0),
        needles=("batch_size",))
    add("evaluate(loss bogus)", lambda: training.evaluate(graph, (X, y), loss="bogus"),
        needles=("bogus", "loss"))
    add("evaluate ok", lambda: training.evaluate(graph, (X, y)), bad=False,
        check=lambda r: 0 <= r["accuracy"] <= 1 and np.isfinite(r["loss"]))
    for label, fn, needle in [
        ("encode encoder bogus", lambda: training.encode(np.ones((2, 3)), encoder="bogus",
                                                         n_steps=4), "encoder"),
        ("encode n_steps 0", lambda: training.encode(np.ones((2, 3)), encoder="rate",
                                                     n_steps=0), "n_steps"),
        ("encode nan features", lambda: training.encode(np.full((2, 3), np.nan),
                                                        encoder="rate", n_steps=4), "finite"),
        ("rate_poisson zero max_rate", lambda: training.rate_poisson(
            jax.random.PRNGKey(0), np.ones(3), 4, max_rate=-1.0, dt=DT), "max_rate"),
        ("rate_bernoulli max_prob 2", lambda: training.rate_bernoulli(
            jax.random.PRNGKey(0), np.ones(3), 4, max_prob=2.0), "max_prob"),
        ("latency n_steps 0", lambda: training.latency(np.ones(3), 0), "n_steps"),
        ("digits n_steps 0", lambda: training.digits(n_steps=0), "n_steps"),
        ("digits test_fraction 1", lambda: training.digits(test_fraction=1.0), "test_fraction"),
        ("feedforward hidden 0", lambda: training.feedforward_snn(3, 2, hidden=(0,)), "hidden"),
        ("feedforward neuron bogus", lambda: training.feedforward_snn(3, 2, neuron="bogus"),
         "neuron"),
        ("feedforward n_inputs 0", lambda: training.feedforward_snn(0, 2), "n_inputs"),
        ("feedforward tau_mem -1", lambda: training.feedforward_snn(3, 2, tau_mem=-1.0),
         "tau_mem"),
        ("read_shd missing", lambda: training.read_shd(os.path.join(ws.root, "no.h5")),
         "no.h5"),
        ("read_spiking_hdf5 npy", lambda: training.read_spiking_hdf5(_file_kinds(ws)["npy"]),
         "data.npy"),
        ("read_spiking_hdf5 n_steps 0", lambda: training.read_spiking_hdf5(
            _file_kinds(ws)["h5 no graph"], n_steps=0), "n_steps"),
        ("predict batch 0", lambda: training.predict(graph, X, batch_size=0), "batch_size"),
        ("predict wrong width", lambda: training.predict(graph, X[..., :2]), "input"),
    ]:
        add(label, fn, needles=(needle,))
    for kw, needle in [
        ({"inputs": X, "labels": y, "n_classes": 2, "dt": 0.0}, "dt"),
        ({"inputs": X, "labels": y, "n_classes": 2, "dt": np.nan}, "dt"),
        ({"inputs": X, "labels": y, "n_classes": 0}, "n_classes"),
        ({"inputs": X, "labels": y, "n_classes": -2}, "n_classes"),
        ({"inputs": X, "labels": y, "n_classes": 2.5}, "n_classes"),
        ({"inputs": X, "labels": y[:3], "n_classes": 2}, "labels"),
        ({"inputs": X}, "labels"),
    ]:
        add(f"SpikeDataset({ {k: v for k, v in kw.items() if k != 'inputs'} })".replace(
            "array", "a"), lambda kw=kw: training.SpikeDataset(**kw), needles=(needle,))
    return cases


# ---------------------------------------------------------------------------- driver
def all_cases(ws: Workspace) -> list[Case]:
    cases = file_cases(ws) + api_cases(ws) + cli_cases(ws) + training_cases(ws)
    names = Counter((c.category, c.name) for c in cases)
    dup = [k for k, v in names.items() if v > 1]
    if dup:
        raise ValueError(f"duplicate case names: {dup[:5]}")
    return cases


def eqx_params(graph):
    import equinox as eqx

    return eqx.filter(graph, eqx.is_inexact_array)


def fast_subset(cases: list[Case], every: int = 6) -> list[Case]:
    """Every case of the api, cli and training categories (except those marked not `fast`),
    and every `every`-th file case."""
    out = []
    k = 0
    for c in cases:
        if not c.fast:
            continue
        if c.category == "file":
            k += 1
            if k % every:
                continue
        out.append(c)
    return out


def table(results: list[tuple[Case, str, str]]) -> str:
    cats = sorted({c.category for c, _, _ in results})
    lines = [f"{'category':<10}" + "".join(f"{o:>11}" for o in OUTCOMES) + f"{'total':>8}"]
    for cat in cats + ["all"]:
        cnt = Counter(o for c, o, _ in results if cat in ("all", c.category))
        lines.append(f"{cat:<10}" + "".join(f"{cnt[o]:>11}" for o in OUTCOMES)
                     + f"{sum(cnt.values()):>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="the fast subset only")
    p.add_argument("--category", default=None)
    p.add_argument("--show", default="unclear,traceback,silent",
                   help="outcome classes whose cases are listed")
    p.add_argument("--json", default=None, help="write the counts (and the listed cases) here")
    p.add_argument("--label", default="", help="a label for the JSON (e.g. the commit)")
    args = p.parse_args(argv)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    ws = Workspace()
    try:
        cases = all_cases(ws)
        if args.fast:
            cases = fast_subset(cases)
        if args.category:
            cases = [c for c in cases if c.category == args.category]
        t0 = time.time()
        results = []
        for c in cases:
            outcome, detail = classify(c)
            results.append((c, outcome, detail))
        show = set(args.show.split(","))
        for c, o, detail in results:
            if o in show:
                print(f"[{o}] {c.category} {c.name}: {detail[:400]}")
        print(table(results))
        print(f"{len(results)} cases in {time.time() - t0:.0f} s")
        if args.json:
            import json

            counts = {cat: dict(Counter(o for c, o, _ in results if cat in ("all", c.category)))
                      for cat in sorted({c.category for c, _, _ in results}) + ["all"]}
            listed = [{"category": c.category, "case": c.name, "outcome": o,
                       "detail": re.sub(r"/tmp/nirjax-sweep-[^/]+/", "", d)[:300]}
                      for c, o, d in results if o in show]
            with open(args.json, "w") as f:
                json.dump({"command": "python tests/hostile_sweep.py " + " ".join(argv or sys.argv[1:]),
                           "label": args.label, "cases": len(results), "counts": counts,
                           "listed": listed}, f, indent=1)
    finally:
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
