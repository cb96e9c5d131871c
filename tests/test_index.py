"""The faiss search index: flat = the exact scan, refusals, the fallback without faiss, re-ranking through it, the CLI."""
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("faiss")

from spreid_nb.cli import load_features, main, save_features, search_features, topk_blocked
from spreid_nb.index import build_index, index_path, knn_lists, load_index, save_index
from spreid_nb.metrics import synthetic_reid_features
from spreid_nb.rerank import re_ranking, re_ranking_scalable

IDENT = dict(name="baseline", config_hash="c0ffee", weights="0123456789abcdef", feature_dim=128, height=128,
             width=64, flip=False, checkpoint="/runs/x/checkpoints/last.pt")


@pytest.fixture(scope="module")
def feats():
    qf, gf, qp, gp, qc, gc = synthetic_reid_features(num_ids=60, num_query=80, num_gallery=3000, num_distractors=600,
                                                     dim=128, seed=3)
    return qf, gf, qp, gp


@pytest.fixture()
def files(tmp_path, feats):
    qf, gf, qp, gp = feats
    gpaths = [f"{p:04d}_c1s1_{i:06d}_00.jpg" for i, p in enumerate(gp)]
    qpaths = [f"{p:04d}_c2s1_{i:06d}_00.jpg" for i, p in enumerate(qp)]
    g = save_features(tmp_path / "gallery.npz", [gf[:1000], gf[1000:]], gpaths, tmp_path, IDENT)
    q = save_features(tmp_path / "query.npz", [qf], qpaths, tmp_path, IDENT)
    return q, g


def test_flat_index_is_the_scan(feats):
    qf, gf, *_ = feats
    scan_i, scan_d = topk_blocked(qf, ((s, gf[s:s + 700]) for s in range(0, len(gf), 700)), k=10)
    I, D = build_index(gf).search(qf, 10)
    np.testing.assert_array_equal(I, scan_i)
    np.testing.assert_allclose(D, scan_d, atol=1e-3)


def test_streamed_build_and_approximate_recall(files, feats):
    qf, gf, *_ = feats
    g = load_features(files[1])
    scan_i = build_index(gf).search(qf, 10)[0]
    fi = build_index(lambda: g.blocks(500), "ivf", n=len(g), dim=g.dim, train_size=3000)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fi.search(qf, 10)[0], scan_i)])
    assert recall >= 0.95, recall


def test_saved_index_refused_for_another_model(files, tmp_path):
    g = load_features(files[1])
    p = save_index(build_index(g.load(), model=g.model, paths=g.paths), index_path(g.path))
    assert p.name == "gallery.npz.faiss" and (tmp_path / "gallery.npz.faiss.json").is_file()
    assert len(load_index(p, model=g.model, paths=g.paths)) == len(g)
    with pytest.raises(ValueError, match="another model"):
        load_index(p, model={**g.model, "weights": "fedcba9876543210"})
    with pytest.raises(ValueError, match="another image list"):
        load_index(p, paths=g.paths[::-1])


def test_without_faiss_search_scans(files, tmp_path, monkeypatch, capsys):
    q, g = files
    assert main(["index", str(g)]) == 0
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now fails
    assert main(["search", str(q), "--gallery", str(g), "--out", str(tmp_path / "s"), "--topk", "5"]) == 0
    out = capsys.readouterr().out
    assert "faiss is not installed" in out and "exact scan" in out
    assert main(["index", str(g)]) == 1
    assert "pip install faiss-cpu" in capsys.readouterr().err


def test_cli_index_then_search(files, tmp_path, capsys):
    q, g = files
    assert main(["search", str(q), "--gallery", str(g), "--out", str(tmp_path / "scan"), "--index", "none"]) == 0
    assert main(["index", str(g)]) == 0
    assert main(["search", str(q), "--gallery", str(g), "--out", str(tmp_path / "flat")]) == 0
    assert "flat index" in capsys.readouterr().out
    a, b = (pd.read_csv(tmp_path / d / "ranking.csv") for d in ("scan", "flat"))
    assert a["gallery"].tolist() == b["gallery"].tolist()
    assert main(["index", str(g), "--kind", "hnsw", "--out", str(tmp_path / "h.faiss")]) == 0
    assert main(["search", str(q), "--gallery", str(g), "--out", str(tmp_path / "h"), "--index",
                 str(tmp_path / "h.faiss"), "--ef", "64", "--rerank"]) == 0
    other = save_features(tmp_path / "other.npz", [load_features(g).load()], load_features(g).paths, tmp_path,
                          {**IDENT, "weights": "ffffffffffffffff"})
    assert main(["search", str(q), "--gallery", str(other), "--out", str(tmp_path / "o"), "--index",
                 str(index_path(g))]) == 1
    assert "another model" in capsys.readouterr().err


def test_rerank_through_flat_index_is_exact(feats):
    qf, gf, *_ = feats
    qf, gf = qf[:60], gf[:1500]
    ex = re_ranking_scalable(qf, gf)
    np.testing.assert_allclose(re_ranking_scalable(qf, gf, knn="flat"), ex, atol=1e-5)
    np.testing.assert_allclose(re_ranking_scalable(qf, gf, knn=build_index(gf)), ex, atol=1e-5)
    from spreid_nb.metrics import compute_distmat
    d = lambda a, b: compute_distmat(a, b)
    np.testing.assert_allclose(re_ranking_scalable(qf, gf, knn="flat"), re_ranking(d(qf, gf), d(qf, qf), d(gf, gf)),
                               atol=1e-5)


def test_knn_lists_self_first(feats):
    _, gf, *_ = feats
    X = np.concatenate([gf[:50], gf[:50]])  # exact duplicates: self must still come first
    I, exact = knn_lists(X, 5)
    assert exact and (I[:, 0] == np.arange(100)).all()
