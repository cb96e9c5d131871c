"""spreid_nb.metrics and spreid_nb.rerank against the installed PyPI torchreid 0.2.5.

`import torchreid` pulls in gdown, cv2 and tensorboard, which are not installed, so the two files under test
are loaded by path: find_spec locates the package without running its __init__.
"""
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from spreid_nb.metrics import compute_distmat, evaluate_rank, synthetic_reid_features
from spreid_nb.rerank import re_ranking, re_ranking_scalable


def _load(rel: str, name: str):
    spec = importlib.util.find_spec("torchreid")
    if spec is None: pytest.skip("torchreid (a dev requirement) is not installed")
    path = Path(spec.submodule_search_locations[0]) / rel
    mspec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(mspec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank.py warns that its Cython build is missing
        mspec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tr_rank():
    return _load("reid/metrics/rank.py", "_torchreid_rank")


@pytest.fixture(scope="module")
def tr_rerank():
    return _load("reid/utils/rerank.py", "_torchreid_rerank")


class _StableNumpy:
    "numpy, except that argsort is stable: torchreid's algorithm with a defined order for ties."
    def __getattr__(self, k): return getattr(np, k)
    def argsort(self, a, axis=-1): return np.argsort(a, axis=axis, kind="stable")


def _torchreid_eval(mod, *args, stable=False):
    mod.np = _StableNumpy() if stable else np
    try: return mod.evaluate_rank(*args, use_metric_cuhk03=False, use_cython=False)
    finally: mod.np = np


def test_torchreid_files_load_without_package_init(tr_rank, tr_rerank):
    import sys
    assert "torchreid" not in sys.modules
    assert tr_rank.IS_CYTHON_AVAI is False  # the python path is the one compared


def _random_case(rng, dtype):
    nq, ng, nid = rng.integers(20, 120), rng.integers(300, 1500), rng.integers(10, 80)
    q_pids, g_pids = rng.integers(0, nid, nq), rng.integers(0, nid, ng)  # pid 0 occurs: distractor-like negatives
    q_cams, g_cams = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
    return rng.random((nq, ng)).astype(dtype), q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(6))
def test_market_equals_torchreid_continuous(tr_rank, seed):
    "float64 uniform distances (no ties), invalid queries included: plain torchreid, no patch."
    rng = np.random.default_rng(seed)
    d, qp, gp, qc, gc = _random_case(rng, np.float64)
    want_cmc, want_map = _torchreid_eval(tr_rank, d, qp, gp, qc, gc, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmc, mAP = evaluate_rank(d, qp, gp, qc, gc, max_rank=50)
    assert cmc.shape == want_cmc.shape and cmc.dtype == want_cmc.dtype
    np.testing.assert_allclose(cmc, want_cmc, atol=1e-6, rtol=0)
    assert abs(mAP - want_map) < 1e-6


def test_market_equals_torchreid_on_features(tr_rank):
    "Distances of synthetic features (float32), Market layout in miniature."
    qf, gf, qp, gp, qc, gc = synthetic_reid_features(num_ids=120, num_query=400, num_gallery=2500, num_distractors=400,
                                                     dim=128, cam_shift=0.35, seed=3)
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        d = compute_distmat(qf, gf, metric)
        want_cmc, want_map = _torchreid_eval(tr_rank, d, qp, gp, qc, gc, 50, stable=True)
        cmc, mAP = evaluate_rank(d, qp, gp, qc, gc)
        np.testing.assert_allclose(cmc, want_cmc, atol=1e-6, rtol=0)
        assert abs(mAP - want_map) < 1e-6
        assert 0.1 < mAP < 0.99  # a regime where ranks are spread out, not a trivial one


def test_market_equals_torchreid_hard_set(tr_rank):
    "A hard set (mAP < 5%): positives sit deep, so whole rows are bucketed rather than their tops."
    qf, gf, qp, gp, qc, gc = synthetic_reid_features(num_ids=120, num_query=300, num_gallery=3000, num_distractors=500,
                                                     dim=256, center_scale=0.2, seed=5)
    d = compute_distmat(qf, gf)
    want_cmc, want_map = _torchreid_eval(tr_rank, d, qp, gp, qc, gc, 50)
    cmc, mAP = evaluate_rank(d, qp, gp, qc, gc)
    np.testing.assert_allclose(cmc, want_cmc, atol=1e-6, rtol=0)
    assert abs(mAP - want_map) < 1e-6
    assert mAP < 0.05


@pytest.mark.parametrize("seed", range(4))
def test_market_ties_equal_torchreid_with_stable_sort(tr_rank, seed):
    "Integer distances: many ties between positives, negatives and junk. Ties go by gallery index."
    rng = np.random.default_rng(100 + seed)
    d, qp, gp, qc, gc = _random_case(rng, np.float32)
    d = np.floor(d * 6).astype(np.float32)
    want_cmc, want_map = _torchreid_eval(tr_rank, d, qp, gp, qc, gc, 20, stable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmc, mAP = evaluate_rank(d, qp, gp, qc, gc, max_rank=20)
    np.testing.assert_allclose(cmc, want_cmc, atol=1e-6, rtol=0)
    assert abs(mAP - want_map) < 1e-6


def test_invalid_queries_counted_not_dropped(tr_rank):
    "Structured features (only row tops are sorted) with queries whose person is not in the gallery."
    qf, gf, qp, gp, qc, gc = synthetic_reid_features(num_ids=80, num_query=200, num_gallery=1200, num_distractors=200,
                                                     dim=64, seed=4)
    qp[::9] = 10_000  # not in the gallery
    d = compute_distmat(qf, gf)
    with pytest.warns(UserWarning, match="23 of 200 queries have no valid match"):
        res = evaluate_rank(d, qp, gp, qc, gc, return_details=True)
    assert res.invalid_q.tolist() == list(range(0, 200, 9))
    want_cmc, want_map = _torchreid_eval(tr_rank, d, qp, gp, qc, gc, 50, stable=True)  # torchreid skips the same queries
    np.testing.assert_allclose(res.cmc, want_cmc, atol=1e-6, rtol=0)
    assert abs(res.mAP - want_map) < 1e-6


def _rerank_inputs(seed, dtype=np.float32, sq=False, **kw):
    qf, gf, *_ = synthetic_reid_features(num_ids=60, num_query=120, num_gallery=500, num_distractors=60, dim=64, seed=seed, **kw)
    metric = "sqeuclidean" if sq else "euclidean"
    return [compute_distmat(a.astype(dtype), b.astype(dtype), metric) for a, b in ((qf, gf), (qf, qf), (gf, gf))], (qf, gf)


@pytest.mark.parametrize("seed,dtype,sq,k", [(0, np.float32, False, (20, 6, 0.3)), (1, np.float64, False, (20, 6, 0.3)),
                                             (2, np.float32, True, (20, 6, 0.3)), (3, np.float64, False, (7, 1, 0.5)),
                                             (4, np.float32, False, (11, 3, 0.0))])
def test_rerank_equals_torchreid(tr_rerank, seed, dtype, sq, k):
    (qg, qq, gg), _ = _rerank_inputs(seed, dtype, sq)
    want = tr_rerank.re_ranking(qg, qq, gg, *k)
    got = re_ranking(qg, qq, gg, *k)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_rerank_asymmetric_inputs_equal_torchreid(tr_rerank):
    "q_q and g_g that are not exactly symmetric: the reference reads columns, so must we."
    (qg, qq, gg), _ = _rerank_inputs(5)
    rng = np.random.default_rng(0)
    qq = qq * (1 + 1e-3 * rng.random(qq.shape)).astype(np.float32)
    gg = gg * (1 + 1e-3 * rng.random(gg.shape)).astype(np.float32)
    np.testing.assert_allclose(re_ranking(qg, qq, gg), tr_rerank.re_ranking(qg, qq, gg), atol=1e-5, rtol=0)


def test_rerank_ties_equal_torchreid_with_stable_sort(tr_rerank):
    "Integer-valued features: many tied distances; the reference with a stable argsort."
    (qg, qq, gg), _ = _rerank_inputs(6)
    qg, qq, gg = (np.round(x) for x in (qg, qq, gg))
    tr_rerank.np = _StableNumpy()
    try: want = tr_rerank.re_ranking(qg, qq, gg)
    finally: tr_rerank.np = np
    np.testing.assert_allclose(re_ranking(qg, qq, gg), want, atol=1e-5, rtol=0)


def test_rerank_then_evaluate_equals_torchreid_pipeline(tr_rank, tr_rerank):
    qf, gf, qp, gp, qc, gc = synthetic_reid_features(num_ids=60, num_query=150, num_gallery=600, num_distractors=80,
                                                     dim=64, cam_shift=0.35, seed=9)
    qg, qq, gg = (compute_distmat(a, b) for a, b in ((qf, gf), (qf, qf), (gf, gf)))
    want = _torchreid_eval(tr_rank, tr_rerank.re_ranking(qg, qq, gg), qp, gp, qc, gc, 20, stable=True)
    got = evaluate_rank(re_ranking(qg, qq, gg), qp, gp, qc, gc, max_rank=20)
    np.testing.assert_allclose(got[0], want[0], atol=1e-6, rtol=0)
    assert abs(got[1] - want[1]) < 1e-6
    # the scalable variant, from the features, lands on the same numbers here
    sc = evaluate_rank(re_ranking_scalable(qf, gf), qp, gp, qc, gc, max_rank=20)
    assert abs(sc[1] - want[1]) < 1e-3
