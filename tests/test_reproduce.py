"""Every reproduction notebook runs with papermill on the smoke preset and writes its table and figures.

The notebooks share one runs folder, as they do for users: a run trained for one table is reused by the next.
"""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import timeout_s

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["reproduce_table1", "reproduce_table2", "reproduce_table3", "reproduce_table4", "reproduce_table5",
             "reproduce_table6", "reproduce_figure2"]


@pytest.fixture(scope="module")
def shared(module_dir):
    return module_dir / "runs", module_dir / "figures"


def _papermill(nb: str, out: Path, params: dict, yaml: str | None = None,
              idle_s: float = 180) -> subprocess.CompletedProcess:
    "Run `nb` with papermill; `idle_s`: about how long it takes on an idle machine (the timeout scales from it)."
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "nbs" / f"{nb}.ipynb"), str(out), "--cwd", str(ROOT / "nbs"), "-k", "python3"]
    for k, v in params.items(): cmd += ["-p", k, str(v)]
    if yaml: cmd += ["-y", yaml]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s(idle_s))


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_notebook_smoke(nb, shared, tmp_path):
    runs, figs = shared
    r = _papermill(nb, tmp_path / f"{nb}.ipynb", dict(preset="smoke", runs_root=runs, out_dir=figs, threads=2))
    assert r.returncode == 0, r.stderr[-4000:]
    if nb.startswith("reproduce_table"):
        n = int(nb[-1])
        md, csv = figs / f"table{n}.md", figs / f"table{n}.csv"
        assert md.exists() and csv.exists()
        df = pd.read_csv(csv)
        ours = [c for c in df.columns if c.endswith("(ours)")]
        assert len(df) > 0 and ours and df[ours].notna().any(axis=1).all()
        assert {"method", "paper_method", "run"} <= set(df.columns) and "delta" not in df.columns
        assert all(c.replace("(ours)", "(paper)") in df.columns for c in ours)
        if n > 1:
            assert {"vs", "gain (ours)", "gain (paper)", "95% interval", "verdict"} <= set(df.columns)
            claims = df[df.vs.fillna("").astype(bool)]   # one seed: a measured difference, no verdict
            assert len(claims) and (claims.verdict == "one run: no verdict").all(), claims.verdict
        text = md.read_text()
        assert "_Provenance: data: synthetic benchmark" in text and "preset: smoke" in text and "commit:" in text
        assert "_Runs: " in text and " | run |" not in text
        if n in (2, 3, 4, 6): assert (figs / f"table{n}_cmc.png").stat().st_size > 5000
        if n == 6: assert df.method.str.contains("re-ranking").any()
    else:
        assert (figs / "figure2.png").stat().st_size > 10_000
        assert json.loads((figs / "figure2.json").read_text())["provenance"]["preset"] == "smoke"
