"""The authors' ImageNet import and the real-image study on the real copies in ../shared/realdata (skipped
without them: a user's clone has none)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spreid_nb.datasets import realdata_root

ROOT = Path(__file__).resolve().parents[1]
REAL = realdata_root()
needs_real = pytest.mark.skipif(REAL is None, reason="no ../shared/realdata: real-data tests skipped")


def _photos(n=48, size=(192, 96)):
    from spreid_nb.study_real import load_images, real_sets, RealStudy
    m = real_sets(RealStudy(str(REAL)))["market"]
    return load_images([r[0] for r in m[:: max(1, len(m) // n)][:n]], size).float() / 255


@needs_real
def test_import_uses_every_present_tensor_and_names_the_absent():
    from spreid_nb.backbones import build_backbone
    from spreid_nb.inception_dump import ABSENT_IN_PUBLIC_DUMP, tf_dump_names
    bb = build_backbone("inception_v3", REAL / "inception_v3_dump")
    rep = bb.dump_import
    present = {p.stem for p in (REAL / "inception_v3_dump").glob("*.h5")} & set(tf_dump_names())
    assert {t for t, _ in rep.used} == present and len(present) == 92
    assert [t for t, _ in rep.absent] == list(ABSENT_IN_PUBLIC_DUMP)
    assert "Mixed_7b.branch3x3dbl_2 (mixed_9_tower_1_conv_1)" in bb.weights_source
    assert rep.pools["mixed_10_tower_2_pool"] == "max" and bb.graph == "tf"


@needs_real
def test_batch_norm_consistency_on_real_photos():
    """Imported: every layer consistent except those fed by the two absent convolutions; random init:
    off by orders of magnitude."""
    from spreid_nb.backbones import build_backbone
    from spreid_nb.inception_dump import absent_layers, bn_statistics, calibrate_bn
    x = _photos()
    bb = build_backbone("inception_v3", REAL / "inception_v3_dump").eval()
    calibrate_bn(bb, x[::2], absent_layers(bb))
    st = bn_statistics(bb, x[1::2]).set_index("layer")
    fed = [l for l in st.index if l.startswith(("Mixed_7b.branch3x3dbl_3", "Mixed_7c.branch3x3dbl_3"))]
    assert st.drop(index=fed).consistent.all(), st[~st.consistent]
    rnd = bn_statistics(build_backbone("inception_v3").eval(), x)
    assert rnd.consistent.mean() < 0.2 and rnd.var_ratio.median() > 1e3


@needs_real
def test_zero_shot_small():
    "Zero-shot on 50 CUHK03 val ids at the study's 192x96: imported features beat random ones 1.5x."
    from spreid_nb.study_real import RealStudy, build_reid, embed_all, load_images, real_sets, _calibrated
    from spreid_nb.metrics import compute_distmat, evaluate_rank
    st = RealStudy(str(REAL))
    s = real_sets(st)
    q = [r for r in s["cuhk03_query"] if r[1] < 50]; g = [r for r in s["cuhk03_gallery"] if r[1] < 50]
    maps = {}
    for init in ("imported", "random"):
        torch.manual_seed(0)
        m = build_reid(st, "baseline", init, 0).eval()
        if init == "imported": _calibrated(m, load_images([r[0] for r in s["train"][:128]], st.reid_size))
        fq, fg = (embed_all(m, load_images([r[0] for r in recs], st.reid_size)) for recs in (q, g))
        ids = lambda recs, k: np.array([r[k] for r in recs])
        maps[init] = evaluate_rank(compute_distmat(fq, fg), ids(q, 1), ids(g, 1), ids(q, 2), ids(g, 2))[1]
    assert maps["imported"] > 1.5 * maps["random"], maps


@needs_real
def test_real_parser_on_a_real_photo():
    "A parser from the dump with the decoder runs on a real photo and gives region maps that sum to one."
    from spreid_nb.parser import HumanParser
    p = HumanParser("inception_v3", pretrained=str(REAL / "inception_v3_dump"), decoder=True).eval()
    x = _photos(2, (192, 128))
    with torch.inference_mode(): r = p.region_probs(x)
    assert r.shape == (2, 5, 44, 28)
    torch.testing.assert_close(r[:, 1:].sum(1) + (1 - r[:, 0]), torch.ones(2, 44, 28), atol=1e-4, rtol=0)


@needs_real
@pytest.mark.slow
def test_real_study_smoke(tmp_path):
    "The real-image study notebook end to end on 3 ids per set, 2 seeds, 2 steps each."
    pm = pytest.importorskip("papermill")
    out = tmp_path / "figures"
    pm.execute_notebook(str(ROOT / "nbs" / "study_real.ipynb"), str(tmp_path / "real.ipynb"),
                        parameters=dict(data_root=str(REAL), seeds=[0, 1], steps=2, parser_steps=2, limit=3,
                                        runs_root=str(tmp_path / "runs"), out_dir=str(out)),
                        cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    claims = (out / "study_real_smoke_claims.csv").read_text()
    assert "semantic pooling vs global pooling" in claims and "random init" in claims
    for name in ("study_real_smoke_arms.md", "study_real_smoke.png", "figure2_real_smoke.png",
                 "study_real_smoke_parser.csv", "study_real_smoke_runs.csv"):
        assert (out / name).is_file(), name
    nb = json.loads((tmp_path / "real.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
