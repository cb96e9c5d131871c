"""The project skeleton: install metadata, environment files, import cost, docs hook."""
import configparser
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def _env_pins():
    lines, in_pip = [], False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\s*- pip:\s*$", line): in_pip = True; continue
        if in_pip and (m := re.match(r"^\s+- (\S.*)$", line)):
            if not m.group(1).startswith("-e"): lines.append(m.group(1).strip())
    return lines


def test_environment_yml_matches_settings():
    s = _settings()
    want = s["requirements"].split() + s["dev_requirements"].split()
    assert sorted(_env_pins()) == sorted(want)


def test_torch_pins():
    req = _settings()["requirements"].split()
    assert "torch==2.14.1" in req and "torchvision==0.29.1" in req


def test_papermill_tags_survive_nbdev_clean():
    assert _settings()["allowed_cell_metadata_keys"].strip() == "tags"


def test_readme_is_generated_and_has_commands():
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_readme.py"), "--check"], check=True)
    text = (ROOT / "README.md").read_text()
    assert re.search(r"^python3 -m venv \.venv && \.venv/bin/pip install -e \"\.\[dev\]\"$", text, re.M)
    assert re.search(r"^\.venv/bin/nbdev_test .*&& \.venv/bin/pytest", text, re.M)


HEAVY = ["papermill", "matplotlib", "pandas", "seaborn", "scipy", "h5py", "nbdev", "torchvision"]


def test_import_is_light():
    code = ("import time, sys; import torch; t = time.perf_counter(); import spreid_nb, spreid_nb.core; "
            "dt = time.perf_counter() - t; print(dt); print(' '.join(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.splitlines()
    dt, mods = float(out[0]), set(out[1].split())
    assert not [m for m in HEAVY if m in mods], f"import spreid_nb pulled in {[m for m in HEAVY if m in mods]}"
    assert dt < 2.0, f"import spreid_nb.core took {dt:.2f}s beyond torch"  # bench/bench_import.py measures it


def test_every_notebook_is_clean_and_has_kernelspec():
    for nb_path in sorted((ROOT / "nbs").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", nb_path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.execution_count is None, f"{nb_path.name}: stored execution count"
                for out in cell.get("outputs", []):
                    assert out.get("output_type") != "error", f"{nb_path.name}: a stored traceback"


def test_docs_hook_hides_directives():
    sys.path.insert(0, str(ROOT / "tools"))
    import mkdocs_hooks
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("#| export\ndef f(): pass"),
        nbformat.v4.new_code_cell("#| hide\nsecret = 1"),
        nbformat.v4.new_code_cell("#| echo: false\nplot()", outputs=[nbformat.v4.new_output("stream", text="x")]),
        nbformat.v4.new_code_cell("#| default_exp core"),
        nbformat.v4.new_markdown_cell("#| not a directive in markdown"),
        nbformat.v4.new_raw_cell("---\nskip_exec: true\n---"),
    ])
    cells = mkdocs_hooks._clean(nb).cells
    assert [c.source for c in cells] == ["def f(): pass", "plot()", "#| not a directive in markdown"]
    assert cells[1].metadata["transient"] == {"remove_source": True}


def test_every_notebook_is_in_the_docs_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for nb_path in sorted((ROOT / "nbs").glob("*.ipynb")):
        if not nb_path.name.startswith("_"):
            assert nb_path.name in nav, f"{nb_path.name} is not in mkdocs.yml's nav"
