"""Every reproduction notebook runs with papermill on the smoke preset and writes its table and figures.

The notebooks share one runs folder, as they do for users: a run trained for one table is reused by the next.
"""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["reproduce_table1", "reproduce_table2", "reproduce_table3", "reproduce_table4", "reproduce_table5",
             "reproduce_table6", "reproduce_figure2"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("figures")


def _papermill(nb: str, out: Path, params: dict, yaml: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "nbs" / f"{nb}.ipynb"), str(out), "--cwd", str(ROOT / "nbs"), "-k", "python3"]
    for k, v in params.items(): cmd += ["-p", k, str(v)]
    if yaml: cmd += ["-y", yaml]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


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
        assert len(df) > 0 and df.measured.notna().all()
        assert {"measured", "paper", "delta", "run"} <= set(df.columns)
        text = md.read_text()
        assert "_Provenance: data: synthetic benchmark" in text and "preset: smoke" in text and "commit:" in text
        if n in (2, 3, 4, 6): assert (figs / f"table{n}_cmc.png").stat().st_size > 5000
        if n == 6: assert df.method.str.contains("re-ranking").any()
    else:
        assert (figs / "figure2.png").stat().st_size > 10_000
        assert json.loads((figs / "figure2.json").read_text())["provenance"]["preset"] == "smoke"


@pytest.mark.slow
def test_paper_preset_validates_layout_and_starts(tmp_path):
    "The paper preset on a fixture tree: a wrong root is refused; a Market-1501 tree starts training."
    from spreid_nb.synth import write_market_layout
    bad = _papermill("reproduce_table2", tmp_path / "bad.ipynb", dict(preset="paper", data_root=tmp_path, runs_root=tmp_path / "runs"),
                     yaml="{overrides: {pretrained: null, iters: 2}, targets: [market1501]}")
    assert bad.returncode != 0 and "market1501" in (bad.stderr + bad.stdout).lower()
    write_market_layout(tmp_path / "data", n_train_ids=4, n_test_ids=4, imgs_per_id=4, n_distractors=2, n_junk=2, seed=0)
    ok = _papermill("reproduce_table2", tmp_path / "ok.ipynb", dict(preset="paper", data_root=tmp_path / "data", runs_root=tmp_path / "runs",
                    out_dir=tmp_path / "figs", threads=2),
                    yaml="{overrides: {pretrained: null, iters: 2, data: market1501, batch_size: 4, workers: 0, backbone: resnet18}, targets: [market1501]}")
    assert ok.returncode == 0, ok.stderr[-4000:]
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert any(r.startswith("baseline-") for r in runs), runs
    phase1 = [p for p in (tmp_path / "runs").glob("baseline-*-L-*") if "-ft" not in p.name]
    assert len(phase1) == 1, runs
    cfg = json.loads((phase1[0] / "config.json").read_text())
    assert cfg["height"] == 492 and cfg["width"] == 164 and cfg["lr"] == 0.01 and cfg["momentum"] == 0.9
