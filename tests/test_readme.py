"""The README's ten-line example runs as written."""

import os
import re
import shutil

from helpers import conformance

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def test_readme_example_runs(tmp_path, monkeypatch):
    shutil.copy(conformance("lif", "lif_norse.nir"), tmp_path / "model.nir")
    monkeypatch.chdir(tmp_path)
    with open(README) as f:
        text = f.read()
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["ys"].shape == (1000, 1)
    assert scope["batch"].shape == (2, 1000, 1)
    assert (tmp_path / "trained.nir").exists()
