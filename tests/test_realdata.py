"""The readers on the real copies in ../shared/realdata (its README names sources, layouts and counts): exact counts.

A fresh clone has no ../shared, so every test here skips in one line; `SPREID_REALDATA` names another folder
(set but empty: switched off). Each test reads file names only, plus a few images, and takes well under 10 s."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spreid_nb.datasets import LIP_LABELS, load_parsing, load_reid, read_cuhk03_jpg, realdata_root
from spreid_nb.transforms import ParsingDataset, read_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real() -> Path:
    root = realdata_root()
    if root is None: pytest.skip("no ../shared/realdata: real-data tests skipped")
    return root


def counts(data):
    "(images, identities, cameras) of train, query and gallery."
    return [(len(r), len({x.pid for x in r}), len({x.camid for x in r}))
            for r in (data.train, data.query, data.gallery)]


def test_realdata_root_default(monkeypatch):
    monkeypatch.delenv("SPREID_REALDATA", raising=False)
    here = ROOT.parent / "shared" / "realdata"
    assert realdata_root() == (here.resolve() if here.is_dir() else None)
    monkeypatch.setenv("SPREID_REALDATA", "")
    assert realdata_root() is None


def test_cuhk03_jpg_pair1_labeled(real):
    d = load_reid("cuhk03_jpg", real)
    assert d.root.name == "cuhk03_pair1" and d.skipped == []
    # train 960 images / 100 ids; val 938 / 100: camera A (images 00-04) is the query, B (05-09) the gallery
    assert counts(d) == [(960, 100, 2), (451, 100, 1), (487, 100, 1)]
    assert sorted({r.pid for r in d.train}) == list(range(100))
    assert {r.camid for r in d.query} == {0} and {r.camid for r in d.gallery} == {1}
    assert {r.pid for r in d.query} == {r.pid for r in d.gallery} == set(range(100))   # val ids kept, restart at 0
    for r in d.query[:5] + d.gallery[:5]:
        assert int(Path(r.path).stem[5:]) // 5 == r.camid and int(Path(r.path).stem[:4]) == r.pid
    assert counts(load_reid("cuhk03-jpeg", real / "cuhk03_pair1")) == counts(d)       # the copy's folder as root
    with pytest.raises(FileNotFoundError, match="no dataset folder found"):
        read_cuhk03_jpg(real, "detected")                                             # the shared copy: labeled only


def test_cuhk01(real):
    for root in (real, real / "cuhk01", real / "cuhk01" / "campus"):
        d = load_reid("cuhk01", root)
        assert d.root == real / "cuhk01" / "campus"
        assert counts(d)[0] == (400, 100, 2) and d.skipped == []
    by_image = {Path(r.path).stem[4:]: r.camid for r in d.train}
    assert by_image == {"001": 0, "002": 0, "003": 1, "004": 1}                       # images 001-002 A, 003-004 B
    assert Counter(r.pid for r in d.train) == Counter({i: 4 for i in range(100)})


def test_market1501_hq_query(real):
    d = load_reid("market1501_crops", real / "market1501_query_hq")
    assert counts(d) == [(0, 0, 0), (651, 300, 6), (0, 0, 0)] and d.skipped == []
    assert all(Path(r.path).name.endswith(".jpg.png") for r in d.query)
    assert all(int(Path(r.path).parent.name) == r.pid for r in d.query)                # the id folder agrees
    assert all(f"_c{r.camid + 1}s" in Path(r.path).name for r in d.query)
    assert Counter(r.camid for r in d.query) == {0: 123, 1: 111, 2: 137, 3: 53, 4: 127, 5: 100}
    split = load_reid("hq-market", real / "market1501_query_hq", query_cams=[0])
    assert (len(split.query), len(split.gallery)) == (123, 528)


def test_viton(real):
    tr, te = load_parsing("viton", real / "viton", "train"), load_parsing("viton", real / "viton", "test")
    assert (len(tr), len(te), tr.skipped, te.skipped) == (2000, 400, [], [])
    assert load_parsing("viton", real / "viton", "val") == te                        # VITON has no val: its test
    assert all(Path(i).stem == Path(l).stem and Path(l).suffix == ".png" for i, l in tr + te)
    assert not {Path(i).stem for i, _ in tr} & {Path(i).stem for i, _ in te}
    ds = ParsingDataset(te[:3], size=(256, 192), original_labels=True)
    for k in range(3):
        x, y = ds[k]
        assert x.shape == (3, 256, 192) and y.shape == (256, 192)
        assert set(y.unique().tolist()) <= set(range(len(LIP_LABELS)))


def test_lip_gt_grayscale_photo(real):
    tr, va = load_parsing("lip", real / "lip_gt", "train"), load_parsing("lip", real / "lip_gt", "val")
    assert (len(tr), len(va)) == (1, 1)
    with Image.open(va[0][0]) as im: assert im.mode == "L"                             # the grayscale photo
    assert read_image(va[0][0]).mode == "RGB"
    for pairs in (tr, va):
        x, y = ParsingDataset(pairs, size=(64, 32))[0]
        assert x.shape == (3, 64, 32) and y.shape == (64, 32)
    x, _ = ParsingDataset(va, size=(64, 32))[0]
    assert np.allclose(x[0].numpy(), x[1].numpy()) and np.allclose(x[1].numpy(), x[2].numpy())   # grey in RGB


def test_cihp_gt(real):
    tr, va = load_parsing("cihp", real / "cihp_gt", "train"), load_parsing("cihp", real / "cihp_gt", "val")
    assert (len(tr), len(va), tr.skipped, va.skipped) == (5, 5, [], [])
    assert tr == va                                                                    # this copy lists the same 5 in both
    ds = ParsingDataset(tr, size=(64, 64), original_labels=True)
    for k in range(len(ds)):
        x, y = ds[k]
        assert set(y.unique().tolist()) <= set(range(len(LIP_LABELS)))
