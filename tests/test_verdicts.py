"""No verdict without an interval: no committed table, README line or reproduction notebook output says
"ahead", "behind", "reproduced" or "Not reproduced" (words that judge a single run), and the tables'
code gives a verdict only where three or more paired seeds give an interval."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spreid_nb.paper import MIN_SEEDS, claim_lines, results_markdown, results_table

ROOT = Path(__file__).resolve().parents[1]
WORDS = re.compile(r"\b(ahead|behind|not reproduced|what reproduced|reproduced)\b", re.I)
NOTEBOOKS = ([ROOT / "nbs" / "index.ipynb", ROOT / "nbs" / "10_paper.ipynb"]   # the home page, the tables' code
             + sorted((ROOT / "nbs").glob("reproduce_*.ipynb")) + sorted((ROOT / "nbs").glob("study_*.ipynb")))


def _texts(path: Path):
    "What a reader of a notebook sees as a result: its outputs, and its headings."
    for c in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            yield from (l for l in src.splitlines() if l.startswith("#"))
        for o in c.get("outputs", []):
            texts = [o.get("text", "")] + [o.get("data", {}).get(k, "") for k in ("text/markdown", "text/plain")]
            for t in texts:
                yield from ("".join(t) if isinstance(t, list) else t).splitlines()


def _offending(lines) -> list[str]:
    return [l.strip()[:160] for l in lines if WORDS.search(l)]


@pytest.mark.parametrize("path", sorted((ROOT / "figures").glob("*.md")) + [ROOT / "README.md"],
                         ids=lambda p: p.name)
def test_committed_text_has_no_single_run_verdicts(path):
    bad = _offending(path.read_text(encoding="utf-8").splitlines())
    assert not bad, f"{path.name} judges single runs: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_have_no_single_run_verdicts(path):
    bad = _offending(_texts(path))
    assert not bad, f"{path.name} judges single runs: {bad}"


def _rows(gains: dict, seeds: int) -> pd.DataFrame:
    rng = np.random.default_rng(len(gains) + seeds)
    rows = []
    for s in range(seeds):
        base = float(rng.uniform(10, 60))
        for m, g in gains.items():
            v = base + g + float(rng.normal(0, 1))
            rows += [dict(table=4, dataset="market1501", method=m, variant="", metric=k, value=v,
                          run=f"{m}-{s}", seed=s) for k in ("mAP", "rank-1")]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seeds", [1, 2, MIN_SEEDS, 5])
@pytest.mark.parametrize("gain", [-8.0, 0.0, 8.0])
def test_verdicts_need_seeds(seeds, gain):
    t = results_table(_rows({"ResNet-18 baseline": 0.0, "SPReID combined": gain}, seeds), 4,
                      paper_method={"ResNet-18 baseline": "Inception-V3"},
                      compare={"SPReID combined": "ResNet-18 baseline"})
    text = results_markdown(t) + "\n" + "\n".join(claim_lines(t))
    assert not WORDS.search(text), text
    verdict = t.verdict.iloc[1]
    if seeds < MIN_SEEDS:
        assert verdict.endswith("no verdict") and t["95% interval"].iloc[1] == "", verdict
    else:
        assert verdict.split()[0] in ("beat", "tie", "lost") and t["95% interval"].iloc[1], verdict
        if abs(gain) > 4: assert verdict.split()[0] == ("beat" if gain > 0 else "lost"), verdict
