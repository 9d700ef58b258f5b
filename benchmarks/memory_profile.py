"""Where the XLA temporary memory of one Linear + LIF layer's forward + backward goes.

For each implementation (the cases of `lif_layer.py`: nirjax under both gradient rules, the
hand-written JAX layer, Spyx), compile forward + backward in its own process with XLA's buffer
assignment dumped (`--xla_dump_to`), and list every temporary buffer of at least half a
`(T, B, N)` float32 array: the HLO value that produced it, its shape and its offset in XLA's
preallocated temporary block. The peak (the block's size) is reported in those units, so the
table says how many time-by-batch-by-neuron arrays each implementation keeps at once, and which.
It also counts the kernels each time loop launches per step (`loop_kernels`), from the
optimized HLO in the same dump.

    python benchmarks/memory_profile.py                     # N = 512
    python benchmarks/memory_profile.py --sizes 256 2048

The numbers do not depend on the machine's load (they are XLA's compile-time assignment).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lif_layer  # the script's own folder is on the path when it runs
from tqdm import tqdm

HERE = Path(__file__).resolve().parent

IMPLS = {  # label: case fields
    "nirjax": {"impl": "nirjax"},
    "nirjax autodiff": {"impl": "nirjax", "gradient": "autodiff"},
    "nirjax checked": {"impl": "nirjax", "execution": {"check_finite": True}},
    "jax": {"impl": "jax"},
    "spyx": {"impl": "spyx"},
}

_ALLOC = re.compile(r"^allocation (\d+): size (\d+), (.*)$")
_VALUE = re.compile(r"value: <\d+ (\S+) @\d+> \(size=(\d+),offset=(\d+)\): (\S+)")


def temp_buffers(dump: Path, unit: int) -> dict:
    """The preallocated temporary block of the largest module in `dump` and its big values."""
    best = None
    for f in dump.glob("*buffer-assignment.txt"):
        block, values = None, []
        for line in f.read_text().splitlines():
            m = _ALLOC.match(line)
            if m:
                block = int(m.group(2)) if "preallocated-temp" in m.group(3) else None
                if block is not None:
                    current = (f.name, block, values)
                continue
            if block is not None:
                v = _VALUE.search(line)
                if v and int(v.group(2)) >= unit // 2:
                    values.append({"value": v.group(1), "size_mb": int(v.group(2)) / 2**20,
                                   "offset_mb": int(v.group(3)) / 2**20, "shape": v.group(4)})
        if block is not None and (best is None or current[1] > best[1]):
            best = current
    if best is None:
        return {"error": "no preallocated temporary block in the dump"}
    name, block, values = best
    return {"module": name.split(".buffer-assignment")[0], "temp_mb": block / 2**20,
            "units": block / unit, "big_values": values}


_NOT_KERNELS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}
_INSTR = re.compile(r"^\s*(?:ROOT )?%\S+ = \S+(?: \S+)*? ([a-z][\w\-]*)\(")


def loop_kernels(dump: Path, module: str | None) -> list[dict]:
    """Every time loop (`while` with a trip count of at least 100) of the optimized `module`
    (the one with the temporary block) in `dump`: its trip count and the kernels its body
    launches per step (every instruction but parameters, tuples, constants and bitcasts; a
    fusion is one kernel). On a
    CPU each kernel is dispatched (and split over the threads) once per step, so at small layer
    sizes this count, not the arithmetic, sets the loop's cost."""
    prefix = re.match(r"module_\d+", module or "")
    files = list(dump.glob(f"{prefix.group(0)}.*after_optimizations.txt")) if prefix else []
    if not files:
        return []
    text = files[0].read_text()
    bodies = {}
    for block in re.split(r"\n(?=%|ENTRY )", text):
        head = block.split(" ", 1)[0].lstrip("%")
        bodies[head] = block
    loops = []
    for m in re.finditer(r"= \S+(?: \S+)*? while\(.*?body=%([\w.\-]+)(.*)", text):
        trip = re.search(r'"known_trip_count":\{"n":"(\d+)"', m.group(2))
        if not trip or int(trip.group(1)) < 100:
            continue
        kinds: dict[str, int] = {}
        for line in bodies.get(m.group(1), "").splitlines()[1:]:
            op = _INSTR.match(line)
            if op and op.group(1) not in _NOT_KERNELS:
                kinds[op.group(1)] = kinds.get(op.group(1), 0) + 1
        loops.append({"trip_count": int(trip.group(1)), "kernels_per_step": sum(kinds.values()),
                      "kinds": kinds})
    return loops


def profile(label: str, fields: dict, n: int, timeout: float, layer: str = "lif") -> dict:
    case = {"n": n, "mode": "fwdbwd", "device": "cpu", "runs": 3, "layer": layer,
            "label": label, **fields}
    with tempfile.TemporaryDirectory() as dump:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_dump_to={dump}"
                            " --xla_dump_hlo_as_text").strip()
        cmd = [sys.executable, str(HERE / "lif_layer.py"), "--case", json.dumps(case)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        result = next((json.loads(line[len(lif_layer.RESULT_TAG):])
                       for line in proc.stdout.splitlines()
                       if line.startswith(lif_layer.RESULT_TAG)), None)
        if result is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
            return {"label": label, "layer": layer, "n": n,
                    "error": f"exit {proc.returncode}: {tail}"}
        unit = lif_layer.BATCH * lif_layer.STEPS * n * 4
        buffers = temp_buffers(Path(dump), unit)
        return {"label": label, "layer": layer, "n": n, "unit_mb": unit / 2**20,
                "reported_temp_mb": result.get("temp_mb"), **buffers,
                "time_loops": loop_kernels(Path(dump), buffers.get("module"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512])
    ap.add_argument("--impls", nargs="+", choices=sorted(IMPLS), default=list(IMPLS))
    ap.add_argument("--layers", nargs="+", choices=["lif", "cubalif", "rlif"], default=["lif"])
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", default=str(HERE / "results" / "memory_profile.json"))
    args = ap.parse_args(argv)
    from nirjax.cli import check_writable

    check_writable("--out", args.out)
    rows = []
    cases = [(layer, n, label) for layer in args.layers for n in args.sizes
             for label in args.impls]
    for layer, n, label in tqdm(cases, desc="cases", unit="case"):
        row = profile(label, IMPLS[label], n, args.timeout, layer)
        rows.append(row)
        head = f"{layer:8s} N={n:5d} {label:18s}"
        if "error" in row:
            print(f"{head} {row['error']}")
            continue
        print(f"{head} temp {row['temp_mb']:7.1f} MB = {row['units']:.2f} (T, B, N) arrays; "
              "big buffers:")
        for v in row["big_values"]:
            print(f"        {v['value']:45s} {v['shape']:24s} at {v['offset_mb']:7.1f} MB")
        for loop in row["time_loops"]:
            print(f"        time loop of {loop['trip_count']} steps: "
                  f"{loop['kernels_per_step']} kernels per step {loop['kinds']}")
    doc = {"benchmark": "memory_profile",
           "command": "python benchmarks/memory_profile.py " + shlex.join(argv or sys.argv[1:]),
           "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "batch": lif_layer.BATCH, "steps": lif_layer.STEPS, "results": rows}
    lif_layer._atomic_write_json(Path(args.out), doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
