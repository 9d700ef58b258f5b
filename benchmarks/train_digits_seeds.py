"""`nirjax train` with its defaults over several seeds: the spread of the test accuracy.

A change that reorders float sums (a matmul's contraction order, a loop's layout) changes the
trained weights in their last bits, and spike thresholds amplify that over 30 epochs, so the
accuracy of one seed moves by up to a point either way. Whether such a change costs accuracy
is a question about the distribution over seeds, which this script measures:

    python benchmarks/train_digits_seeds.py                 # seeds 1-5
    python benchmarks/train_digits_seeds.py --seeds 1 2 3 --before FILE.json

Each seed runs `benchmarks/train_digits.py -- --seed S` in its own process. `--before`: a
previous output of this script (e.g. from an older commit), copied into the new file beside the
new numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--before", help="an earlier output of this script to keep beside")
    ap.add_argument("--label", default="this commit")
    ap.add_argument("--out", default=str(HERE / "results" / "train_digits_seeds.json"))
    args = ap.parse_args(argv)
    from nirjax import atomic_path
    from nirjax.cli import check_readable, check_writable

    check_writable("--out", args.out)
    if args.before:
        check_readable("--before", args.before)
    rows = []
    for seed in tqdm(args.seeds, desc="seeds", unit="run"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run.json"
            proc = subprocess.run([sys.executable, str(HERE / "train_digits.py"), "--json",
                                   str(out), "--", "--seed", str(seed)],
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not out.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
                raise SystemExit(f"seed {seed}: train_digits.py failed: {tail}")
            run = json.loads(out.read_text())
        rows.append({"seed": seed, "test_accuracy": run["test_accuracy"]})
    acc = [r["test_accuracy"] for r in rows]
    doc = {"benchmark": "train_digits_seeds",
           "command": "python benchmarks/train_digits_seeds.py " + " ".join(argv or sys.argv[1:]),
           "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "label": args.label, "runs": rows,
           "mean_accuracy": statistics.mean(acc),
           "stdev_accuracy": statistics.stdev(acc) if len(acc) > 1 else 0.0}
    if args.before:
        doc["before"] = json.loads(Path(args.before).read_text())
    with atomic_path(args.out, ".json") as tmp, open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{args.label}: mean {100 * doc['mean_accuracy']:.2f} % "
          f"(sd {100 * doc['stdev_accuracy']:.2f}) over seeds {args.seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
