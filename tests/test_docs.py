"""Docs that stay true: the README's and every docs page's python blocks run, every `nirjax ...`
command line in them parses with the real command line, docs/cli.md covers every registered
command, and every measured number is found in the results file it cites.

The conventions (docs/README.md, "Checked docs"):

- A python block runs, in page order, in one namespace per page, in a folder holding
  `model.nir` (written by `nirjax train`, trained for this test) and the NIR paper's
  `lif_norse.nir` and `lif_exact.csv`.
- `<!-- docs-test: setup CODE -->` on the lines just before a block runs CODE first (in the same
  namespace): for a fragment that uses names the page has not defined.
- `<!-- docs-test: skip REASON -->` just before a block leaves it out; the reason is required.
- A paragraph that quotes a measurement cites its results file: `benchmarks/results/NAME.json`
  in the text, or invisibly `<!-- results: benchmarks/results/NAME.json -->`; a citation also
  holds for a table right after the paragraph.
  Every number with a unit (`%`, `s`, `ms`, `x`, `MiB`, ...) in it must appear in a cited
  file, rounded as quoted (a percentage may be stored as a fraction); settings written in
  backticks (`tau = 1 ms`) are not measurements and are not checked. A cited file states the
  command that made it (a `"command"` key), or the paragraph (or its comment) gives it:
  `python benchmarks/SCRIPT.py ...`.
- A paragraph with such numbers and no citation fails, unless it is marked
  `<!-- docs-test: unmeasured REASON -->` (settings, targets, or numbers with no results file
  yet: those are listed by `test_unmeasured_paragraphs_are_listed`).
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import re
import shlex
import shutil
from dataclasses import dataclass

import pytest
from helpers import conformance

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                recursive=True)
)

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```",
                   re.S | re.M)
MARK = re.compile(r"<!--\s*docs-test:\s*(?P<kind>skip|setup|unmeasured)\b(?P<text>.*?)-->", re.S)
CITE = re.compile(r"(?<![\w/])(?:benchmarks/)?results/[\w./-]+?\.json")
COMMAND = re.compile(r"(?:python|bash)\s+benchmarks/[\w/.-]+\.(?:py|sh)")
# a measured-looking number: digits with a unit (not part of a word, a name or a flag)
MEASURE = re.compile(
    r"(?<![\w.\-/`])(?P<num>\d+(?:\.\d+)?)(?:\s?)(?P<unit>%|x(?![\w])|ms\b|µs\b|s\b|MiB\b|GiB\b|"
    r"steps/s\b)"
)


def read(page: str, root: str = ROOT) -> str:
    with open(os.path.join(root, page), encoding="utf-8") as f:
        return f.read()


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    skip: str | None
    setup: str


def blocks(page: str) -> list[Block]:
    text, out = read(page), []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip()
        skip, setup = None, ""
        # the markers directly above the fence (only blank lines or other markers between)
        while before.endswith("-->"):
            start = before.rfind("<!--")
            mark = MARK.fullmatch(before[start:])
            if mark is None:
                break
            if mark["kind"] == "skip":
                skip = mark["text"].strip()
                assert skip, f"{page}: a docs-test skip needs a reason"
            elif mark["kind"] == "setup":
                setup = mark["text"].strip("\n") + "\n" + setup
            before = before[:start].rstrip()
        code = "\n".join(line[len(m["indent"]):] for line in m["body"].splitlines())
        out.append(Block(page, text[: m.start()].count("\n") + 1, m["lang"], code, skip, setup))
    return out


# ---------------------------------------------------------------------- python blocks run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the files the docs use: `model.nir` from a quick `nirjax train` run, the
    NIR paper's `lif_norse.nir` and its input and exact recording `lif_exact.csv`."""
    from nirjax._cli import main

    folder = tmp_path_factory.mktemp("docs")
    run = folder / "run"
    assert main(["train", "--epochs", "1", "--limit", "128", "--out", str(run),
                 "--no-progress"]) == 0
    shutil.copy(run / "model.nir", folder / "model.nir")
    shutil.copy(conformance("lif", "lif_norse.nir"), folder / "lif_norse.nir")
    shutil.copy(conformance("lif", "lif_exact.csv"), folder / "lif_exact.csv")
    return folder


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, workdir, monkeypatch):
    runnable = [b for b in blocks(page) if b.lang in ("python", "py")]
    if not runnable:
        pytest.skip(f"{page} has no python blocks")
    monkeypatch.chdir(workdir)
    scope: dict = {"__name__": f"docs:{page}"}
    for b in runnable:
        if b.skip:
            continue
        code = b.setup + b.code
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # what the blocks print
                exec(compile(code, f"{page}:{b.line}", "exec"), scope)
        except Exception as e:  # noqa: BLE001 - report which block of which page failed
            raise AssertionError(f"{page}, python block at line {b.line} failed: "
                                 f"{type(e).__name__}: {e}") from e


def test_readme_ten_lines_on_the_file_nirjax_train_writes(workdir, monkeypatch):
    """The README's first example is at most a dozen lines and works on `nirjax train`'s file
    (its nodes are fc1, lif1, ...; dt is the recorded one)."""
    (b,) = [b for b in blocks("README.md") if b.lang == "python" and "ys = model(xs)" in b.code]
    assert len(b.code.strip().splitlines()) <= 12 and not b.skip
    monkeypatch.chdir(workdir)
    scope: dict = {}
    exec(compile(b.code, "README.md", "exec"), scope)
    assert scope["ys"].shape == (1000, 10)
    assert scope["batch"].shape == (2, 1000, 10)
    assert scope["res"].record["lif1"]["v"].shape == (1000, 128)
    assert (workdir / "trained.nir").exists()


def test_skips_are_few_and_give_reasons():
    skipped = [(b.page, b.line, b.skip) for p in PAGES for b in blocks(p) if b.skip]
    total = sum(1 for p in PAGES for b in blocks(p) if b.lang in ("python", "py"))
    assert len(skipped) <= max(3, total // 4), skipped


# ---------------------------------------------------------------------- command lines parse


def command_lines(page: str) -> list[tuple[int, str]]:
    out = []
    for b in blocks(page):
        if b.lang not in ("", "bash", "console", "sh", "shell"):
            continue
        joined = re.sub(r"\\\n\s*", " ", b.code)
        # in a console transcript only the `$ ` lines are commands (the rest is output)
        prompt = b.lang == "console" or any(x.lstrip().startswith("$ ")
                                            for x in joined.splitlines())
        for line in joined.splitlines():
            line = line.strip()
            if prompt and not line.startswith("$ "):
                continue
            line = line[2:] if line.startswith("$ ") else line
            if line.startswith("nirjax ") or line == "nirjax":
                out.append((b.line, line.split("#")[0].strip()))
    return out


@pytest.mark.parametrize("page", PAGES)
def test_command_lines_parse(page):
    from nirjax._cli import build_parser

    lines = command_lines(page)
    if not lines:
        pytest.skip(f"{page} shows no nirjax command lines")
    parser = build_parser()
    for line_no, line in lines:
        line = re.sub(r"\[[^\]]*\]", "", line)  # [optional parts] are left out
        if "..." in line:
            continue
        argv = shlex.split(line)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            raise AssertionError(f"{page}:{line_no}: `{line}` does not parse") from e


def registered_commands() -> list[str]:
    from nirjax._cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(sub.choices)


def test_cli_md_covers_every_command():
    text = read("docs/cli.md")
    headings = set(re.findall(r"^#+ `nirjax (\w[\w-]*)", text, re.M))
    commands = registered_commands()
    assert {"info", "run", "compare", "train", "calibrate", "fit", "characterize"} <= set(commands)
    missing = [c for c in commands if c not in headings]
    assert not missing, (f"docs/cli.md has no section `## \\`nirjax CMD ...\\`` for {missing}; "
                         "add one (flags, an example, exit codes)")


def test_every_command_is_in_the_readme_list():
    text = read("README.md")
    missing = [c for c in registered_commands() if f"`nirjax {c}" not in text]
    assert not missing, f"README.md, 'Command line', does not mention {missing}"


# ---------------------------------------------------------------------- numbers are measured


def paragraphs(page: str, root: str = ROOT):
    """`(line, text)` of each paragraph or table outside code blocks, with its markers."""
    text = read(page, root)
    masked = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    line = 1
    for chunk in re.split(r"(\n\s*\n)", masked):
        if chunk.strip() and not chunk.startswith("\n"):
            yield line, chunk
        line += chunk.count("\n")


def _numbers(value, out):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out.append(float(value))
    elif isinstance(value, str):
        out.extend(float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", value))
    elif isinstance(value, dict):
        for v in value.values():
            _numbers(v, out)
    elif isinstance(value, list):
        for v in value:
            _numbers(v, out)


def file_numbers(path: str, root: str = ROOT) -> tuple[list[float], bool]:
    with open(os.path.join(root, path), encoding="utf-8") as f:
        data = json.load(f)
    out: list[float] = []
    _numbers(data, out)
    return out, isinstance(data, dict) and bool(data.get("command"))


def quoted(num: str, unit: str, values: list[float]) -> bool:
    """Whether a quoted number (rounded as written) is one of the values (a percentage may be
    stored as a fraction, a time in ms or µs as seconds)."""
    q = float(num)
    half = 0.5 * 10 ** -(len(num.split(".")[1]) if "." in num else 0)
    scales = {"%": (1, 100), "ms": (1, 1e3), "µs": (1, 1e6)}.get(unit, (1,))
    return any(abs(v * s - q) <= half * (1 + 1e-9) for v in values for s in scales)


def measurements(text: str):
    plain = re.sub(r"`[^`]*`", "", text)  # settings in backticks are not measurements
    plain = re.sub(r"<!--.*?-->", "", plain, flags=re.S)
    plain = re.sub(r"\]\([^)]*\)", "]", plain)  # link targets
    return [(m["num"], m["unit"]) for m in MEASURE.finditer(plain)]


def check_page_numbers(page: str, root: str = ROOT) -> tuple[list[str], list[str]]:
    problems, unmeasured = [], []
    before = ""
    for line, text in paragraphs(page, root):
        found = measurements(text)
        marks = [m for m in MARK.finditer(text) if m["kind"] == "unmeasured"]
        # a citation holds for its paragraph and for a table right after it
        context = before + "\n" + text if text.lstrip().startswith("|") else text
        before = text
        cites = sorted({c if c.startswith("benchmarks/") else "benchmarks/" + c
                        for c in CITE.findall(context)})
        if marks:
            unmeasured.append(f"{page}:{line}: {marks[0]['text'].strip()}")
            continue
        if not found:
            continue
        if not cites:
            problems.append(f"{page}:{line}: quotes {[n + u for n, u in found][:5]} but cites no "
                            "benchmarks/results file (or mark it <!-- docs-test: unmeasured "
                            "REASON -->)")
            continue
        values, with_command = [], False
        for c in cites:
            if not os.path.exists(os.path.join(root, c)):
                problems.append(f"{page}:{line}: cites {c}, which does not exist")
                continue
            v, has = file_numbers(c, root)
            values += v
            with_command |= has
        if not with_command and not COMMAND.search(context):
            problems.append(f"{page}:{line}: cites {cites}, but neither the file nor the "
                            "paragraph states the command that produced it")
        for num, unit in found:
            if not quoted(num, unit, values):
                problems.append(f"{page}:{line}: {num} {unit} is not in {cites}")
    return problems, unmeasured


@pytest.mark.parametrize("page", PAGES + ["benchmarks/README.md"])
def test_quoted_numbers_come_from_results_files(page):
    problems, _ = check_page_numbers(page)
    assert not problems, "\n".join(problems)


def test_unmeasured_paragraphs_are_listed(capsys):
    """Not a check: prints the paragraphs marked unmeasured, the docs' known gaps."""
    listed = [u for p in PAGES + ["benchmarks/README.md"] for u in check_page_numbers(p)[1]]
    with capsys.disabled():
        print(f"\n{len(listed)} paragraph(s) marked unmeasured:", *listed, sep="\n  ")
    assert all(":" in u for u in listed)


def test_number_check_catches_a_wrong_number(tmp_path):
    """The checker itself: a quoted number missing from the cited file is reported, a right
    one (also as a fraction) is not, and an uncited measurement is reported."""
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "r.json").write_text(json.dumps({"command": "python x.py", "acc": 0.9638,
                                                "wall": 6.93}))
    (tmp_path / "p.md").write_text(
        "Accuracy 96.38 % in 6.9 s (benchmarks/results/r.json).\n\n"
        "Accuracy 97.00 % (benchmarks/results/r.json).\n\n"
        "It took 12 s.\n\n"
        "<!-- docs-test: unmeasured a target, not a measurement -->\nAt most 180 s.\n"
    )
    problems, unmeasured = check_page_numbers("p.md", str(tmp_path))
    assert len(problems) == 2, problems
    assert "97.00 %" in problems[0] and "cites no benchmarks/results" in problems[1]
    assert unmeasured == ["p.md:7: a target, not a measurement"]
