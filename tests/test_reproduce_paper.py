"""The paper preset of a reproduction notebook, on fixture trees of the real releases' layout.

Apart from tests/test_reproduce.py so that the smoke runs that module shares are removed before this test writes
its 2 GB of paper-sized checkpoints (CI's disk is small).
"""
import json

import pandas as pd
import pytest

from test_reproduce import _papermill


@pytest.mark.slow
def test_paper_preset_validates_layout_and_starts(tmp_path):
    """`papermill nbs/reproduce_table6.ipynb -p preset paper -p data_root DIR` on fixture trees, with the paper's models
    and sizes (Inception-V3* parser at 512x512, Inception-V3 and ResNet-152 baselines at 492x164, SPReID at 512x170,
    fine-tuning at 748x246) for 2 iterations of 2 images each: a wrong root is refused before any checkpoint or table is written;
    Market-1501 + LIP trees run every stage and write the table."""
    from spreid_nb.synth import write_market_layout, write_lip_layout
    few = "{pretrained: null, iters: 2, batch_size: 2, workers: 0, data: market1501}"
    bad = _papermill("reproduce_table6", tmp_path / "bad.ipynb", dict(preset="paper", data_root=tmp_path, runs_root=tmp_path / "bad_runs",
                     out_dir=tmp_path / "figs"), yaml="{overrides: %s, targets: [market1501]}" % few)
    assert bad.returncode != 0
    assert "lip: no train split under" in bad.stderr + bad.stdout, (bad.stderr + bad.stdout)[-3000:]
    assert not any((tmp_path / "bad_runs").glob("*/checkpoints/last.pt")) and not (tmp_path / "figs" / "table6.md").exists()
    write_market_layout(tmp_path / "data", n_train_ids=4, n_test_ids=4, imgs_per_id=4, n_distractors=2, n_junk=2, seed=0)
    write_lip_layout(tmp_path / "data", n_train=4, n_val=2, seed=0)
    ok = _papermill("reproduce_table6", tmp_path / "ok.ipynb", dict(preset="paper", data_root=tmp_path / "data", runs_root=tmp_path / "runs",
                    out_dir=tmp_path / "figs", threads=2), yaml="{overrides: %s, targets: [market1501]}" % few, idle_s=400)
    assert ok.returncode == 0, ok.stderr[-4000:]
    cfgs = {p.name: json.loads((p / "config.json").read_text()) for p in (tmp_path / "runs").iterdir()}
    def one(prefix):
        found = [c for n, c in cfgs.items() if n.startswith(prefix) and not n[len(prefix):].startswith("ft-")]
        assert len(found) == 1, (prefix, sorted(cfgs)); return found[0]
    parser = one("parser-")
    assert (parser["task"], parser["data"], parser["parser_backbone"], parser["height"], parser["width"]) == ("parser", "lip", "inception_v3", 512, 512)
    assert (parser["lr"], parser["head_lr"]) == (0.01, 0.1)
    for prefix, bb in (("baseline-inception_v3-L-", "inception_v3"), ("baseline-resnet152-L-", "resnet152")):
        c = one(prefix)
        assert (c["backbone"], c["height"], c["width"], c["lr"], c["momentum"], c["data"]) == (bb, 492, 164, 0.01, 0.9, "market1501")
        ft = one(prefix[:-1] + "-ft-market1501-")
        assert (ft["backbone"], ft["height"], ft["width"], ft["lr"]) == (bb, 748, 246, 0.001)
        assert ft["init_from"].startswith(f"../{prefix}") and ft["init_from"].endswith("/checkpoints/last.pt")
    for v in ("wfg", "wofg"):
        c = one(f"spreid_{v}-exclusive-")
        assert (c["model"], c["backbone"], c["parser_backbone"], c["height"], c["width"], c["parser_size"]) == \
               (f"spreid_{v}", "inception_v3", "inception_v3", 512, 170, [512, 512])
        assert c["parser_ckpt"].startswith("../parser-") and c["parser_ckpt"].endswith("/parser.pt") and one(f"spreid_{v}-exclusive-ft-market1501-")["height"] == 748
    assert all((tmp_path / "runs" / n / "eval.json").exists() for n in cfgs), sorted(cfgs)
    table = pd.read_csv(tmp_path / "figs" / "table6.csv")
    assert set(table.method) >= {"Inception-V3 ft", "Inception-V3 ft*", "SPReID combined-ft", "SPReID combined-ft*"}
    assert "preset: paper" in (tmp_path / "figs" / "table6.md").read_text()
