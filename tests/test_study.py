"Smoke run of the study notebook with minimal parameters (about half a minute on an idle 2-core CPU)."
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_study_notebook_smoke(tmp_path):
    pm = pytest.importorskip("papermill")
    out = tmp_path / "figures"
    pm.execute_notebook(str(ROOT / "nbs" / "study_semantic_pooling.ipynb"), str(tmp_path / "study.ipynb"),
                        parameters=dict(synth_preset="smoke", seeds=[0, 1], iters=2, batch_size=8, parser_iters=2,
                                        dose_parser_iters=[1], sweep=[0.3], runs_root=str(tmp_path / "runs"), out_dir=str(out)),
                        cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    claims = (out / "study_claims.csv").read_text()
    assert "oracle − shuffled" in claims and "learned − baseline" in claims
    for name in ("study_arms.md", "study_misalignment.png", "study_arms.png", "study_parsing.png", "study_runs.csv",
                 "study_dose.md", "study_dose.png"):
        assert (out / name).is_file(), name
    arms = (out / "study_arms.md").read_text()
    # the controls and the variation are stated; each seed drew its own benchmark
    assert "of images got regions of their own identity" in arms and "Variation the intervals cover" in arms
    assert "draws its own benchmark" in arms
    dose = (out / "study_dose.csv").read_text()
    for source in ("uniform", "oracle@8x4", "blur:4", "parser 1 steps", "parser 2 steps", "oracle", "learned"):
        assert f"\n{source}," in dose, source
    runs = (out / "study_runs.csv").read_text()
    assert "synth-smoke-seed0-" in runs and "synth-smoke-seed1-" in runs
    nb = json.loads((tmp_path / "study.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
