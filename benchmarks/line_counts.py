"""Lines per area of the code, at two commits: all lines, and code lines (without docstrings,
comments and blank lines). `python benchmarks/line_counts.py OLD NEW [OUT.json]` (git
revisions)."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize

AREAS = {
    "neuron definitions": ["nirjax/primitives/_neuron.py", "nirjax/_discretization.py"],
    "compilers (discrete, continuous)": ["nirjax/_graph.py", "nirjax/_plan.py",
                                         "nirjax/_continuous.py"],
    "options and their codec": ["nirjax/_options.py", "nirjax/_import.py", "nirjax/_export.py",
                                "nirjax/_commands/run.py"],
    "mismatch fitting": ["training/_mismatch*.py", "training/_paths.py"],
}


def _files(rev: str, pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev], capture_output=True,
                         text=True, check=True).stdout.split()
    import fnmatch

    return [f for f in out if fnmatch.fnmatch(f, pattern)]


def _counts(source: str) -> tuple[int, int]:
    lines = source.splitlines()
    doc = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(
                body[0].value.value, str):
            doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    code = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
            code.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines), len(code - doc)


def main(old: str, new: str, out: str | None = None) -> None:
    print(f"| area | lines {old} | lines {new} | code lines {old} | code lines {new} |")
    print("|---|---|---|---|---|")
    rows = {}
    for area, patterns in AREAS.items():
        totals = {}
        for rev in (old, new):
            n_all = n_code = 0
            for pattern in patterns:
                for f in _files(rev, pattern):
                    src = subprocess.run(["git", "show", f"{rev}:{f}"], capture_output=True,
                                         text=True, check=True).stdout
                    a, c = _counts(src)
                    n_all, n_code = n_all + a, n_code + c
            totals[rev] = (n_all, n_code)
        rows[area] = {"lines": [totals[old][0], totals[new][0]],
                      "code_lines": [totals[old][1], totals[new][1]]}
        print(f"| {area} | {totals[old][0]} | {totals[new][0]} | {totals[old][1]} | "
              f"{totals[new][1]} |")
    if out:
        import json

        import nirjax

        with nirjax.atomic_path(out, ".json") as tmp, open(tmp, "w") as f:
            json.dump({"command": f"python benchmarks/line_counts.py {old} {new} {out}",
                       "revisions": [old, new], "areas": rows}, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
