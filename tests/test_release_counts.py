"""The published protocol counts, read from trees of empty files whose names reproduce the real releases.

Market-1501 and DukeMTMC-reID: per split the number of images, identities and cameras, Market's junk
(-1) and distractors (0000), and the 24 names with a doubled extension, as the authors' lists
(emrahbasaran/SPReID, train_list/ and evaluation_list/) name the release's files; plus the stray files and
harmless variants a user's copy carries. The auxiliary sets at their published sizes, merged by `aggregate`
with the paper's options. The files are empty, so a reader that opened an image would fail: the counts
come from the names alone. With SPREID_AUTHORS_LISTS pointing at a checkout of the authors' repository,
the last test reads their real lists and a tree of exactly the files they name."""
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spreid_nb.datasets import (AGGREGATE_EXPECTED, CUHK03_MAT, PAPER_TRAIN_SETS, aggregate,
                                aggregate_table, load_reid, read_lists)

# The 24 names of the real Market-1501 release that end in .jpg.jpg (all in the test split).
MARKET_DOUBLED = {
    "query": ["1488_c1s6_023021_00", "1488_c2s3_065527_00", "1488_c3s3_071344_00", "1488_c4s6_022241_00",
              "1488_c5s3_071737_00", "1488_c6s3_094992_00"],
    "bounding_box_test": [
        "-1_c4s6_022316_11", "-1_c6s3_094992_04", "0000_c1s6_023071_04", "0000_c4s6_022316_04",
        "0000_c6s3_094992_01", "1488_c1s6_023021_02", "1488_c1s6_023071_05", "1488_c2s3_065527_02",
        "1488_c2s3_065552_02", "1488_c3s3_071344_02", "1488_c3s3_071369_01", "1488_c3s3_071419_03",
        "1488_c4s6_022241_02", "1488_c4s6_022291_05", "1488_c4s6_022316_08", "1488_c5s3_071737_01",
        "1488_c5s3_071762_01", "1488_c5s3_071862_01"]}


def touch_all(root: Path, rels) -> None:
    "Empty files at the relative paths (folders made once each)."
    made = set()
    for rel in rels:
        p = root / rel
        if p.parent not in made:
            p.parent.mkdir(parents=True, exist_ok=True); made.add(p.parent)
        p.touch()


def spread(n_images: int, ids, n_cams: int):
    "(pid, camera 1..n_cams, k) for n_images images over the ids round-robin: every id and camera appears."
    ids = list(ids)
    return [(ids[k % len(ids)], 1 + (k // len(ids) + k) % n_cams, k) for k in range(n_images)]


def market_names():
    "Every file name of Market-1501's three folders, with the real counts, junk, distractors, doubled names."
    test_ids = list(range(1, 1498, 2)) + [1488]                   # 750 test ids, 1488 among them
    train_ids = sorted(set(range(1, 1502)) - set(test_ids))         # the other 751
    def name(pid, cam, k): return f"{'-1' if pid < 0 else f'{pid:04d}'}_c{cam}s1_{k:06d}_01.jpg"
    doubled = {f: [n + ".jpg.jpg" for n in ns] for f, ns in MARKET_DOUBLED.items()}
    out = {"bounding_box_train": [name(*t) for t in spread(12936, train_ids, 6)]}
    out["query"] = [name(*t) for t in spread(3368 - 6, [i for i in test_ids if i != 1488], 6)] + doubled["query"]
    real = [name(*t) for t in spread(13115 - 13, [i for i in test_ids if i != 1488], 6)]
    junk = [name(-1, 1 + k % 6, 500000 + k) for k in range(3819 - 2)]
    distractors = [name(0, 1 + k % 6, 600000 + k) for k in range(2798 - 3)]
    out["bounding_box_test"] = real + junk + distractors + doubled["bounding_box_test"]
    return out


def duke_names():
    "Every file name of DukeMTMC-reID's three folders, with the real counts (408 gallery-only distractor ids)."
    train_ids, test_ids, extra = range(1, 1404, 2), range(2, 1405, 2), range(5001, 5409)
    def name(pid, cam, k): return f"{pid:04d}_c{cam}_f{k:07d}.jpg"
    return {"bounding_box_train": [name(*t) for t in spread(16522, train_ids, 8)],
            "query": [name(*t) for t in spread(2228, test_ids, 8)],
            "bounding_box_test": [name(*t) for t in spread(17661, list(test_ids) + list(extra), 8)]}


def with_quirks(names: dict) -> dict:
    "The same images with harmless variants (upper-case extensions) and the stray files of a user's copy."
    out = {f: list(ns) for f, ns in names.items()}
    tr = out["bounding_box_train"]
    for i in (0, 1, 2): tr[i] = tr[i][:-4] + ".JPG"
    out["query"][0] = out["query"][0][:-4] + ".jpg.JPG"
    for f in out: out[f] += ["Thumbs.db"]
    tr += [".DS_Store", "._" + tr[5]]
    return out


def fast_tmp(tmp_path_factory, name: str) -> Path:
    "A temporary folder in memory (/dev/shm) where there is one: 100K empty files in seconds, not minutes."
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK): return Path(tempfile.mkdtemp(prefix=f"spreid-{name}-", dir=shm))
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    "Market-1501 and DukeMTMC-reID as released (names), with quirks, under one data root."
    root = fast_tmp(tmp_path_factory, "releases")
    for folder, names in (("Market-1501-v15.09.15", with_quirks(market_names())),
                          ("DukeMTMC-reID", with_quirks(duke_names()))):
        touch_all(root / folder, [f"{f}/{n}" for f, ns in names.items() for n in ns])
        touch_all(root / folder, ["readme.txt", "gt_bbox/0001_c1s1_001051_00.jpg"])   # outside the splits
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def no_decoding(monkeypatch):
    "Opening an image fails: counting must come from the names."
    def refuse(*a, **k): raise AssertionError("a reader opened an image while counting")
    monkeypatch.setattr(Image, "open", refuse)


def table(d):
    return d.counts()[["images", "identities", "cameras", "skipped"]].values.tolist()


def test_market1501_published_counts(releases, no_decoding):
    d = load_reid("market1501", releases)
    #        images  ids  cams  skipped
    assert table(d) == [[12936, 751, 6, 3],          # Thumbs.db, .DS_Store, ._ resource fork
                        [3368, 750, 6, 1],           # Thumbs.db
                        [15913, 751, 6, 3819 + 1]]   # junk -1 dropped, distractors 0000 kept
    assert sum(r.pid == 0 for r in d.gallery) == 2798
    assert sum(Path(r.path).name.endswith(".jpg.jpg") for r in d.query + d.gallery) == 6 + 16
    assert sum(Path(r.path).suffix == ".JPG" for r in d.train + d.query) == 4
    assert {r.pid for r in d.query} <= {r.pid for r in d.gallery}
    reasons = d.skipped_summary().set_index(["split", "reason"])["files"].to_dict()
    assert reasons == {("gallery", "junk (pid -1)"): 3819, ("gallery", "stray file (not .jpg)"): 1,
                       ("query", "stray file (not .jpg)"): 1, ("train", "hidden file"): 2,
                       ("train", "stray file (not .jpg)"): 1}


def test_dukemtmcreid_published_counts(releases, no_decoding):
    d = load_reid("dukemtmcreid", releases)
    assert table(d) == [[16522, 702, 8, 3], [2228, 702, 8, 1], [17661, 1110, 8, 1]]


def aux_names():
    "The auxiliary sets at their published sizes: folder -> relative names."
    out = {"VIPeR": [f"cam_{c}/{i:03d}_{a}.bmp" for i in range(632) for c, a in (("a", 0), ("b", 90))],
           "campus": [f"{p:04d}{c:03d}.png" for p in range(1, 972) for c in range(1, 5)],
           "Dataset": [f"P{k}/cam{c}/{i:03d}_{j}.png" for k, n in enumerate((971, 306, 107, 193, 239), 1)
                       for i in range(1, n + 1) for c in (1, 2) for j in (1, 2)],
           "prid_2011/single_shot": [f"cam_a/person_{i:04d}.png" for i in range(1, 386)]
                                    + [f"cam_b/person_{i:04d}.png" for i in range(1, 750)],
           "3DPeS/RGB": [f"{p:03d}_{v}_{k}.bmp" for p, v, k in spread(1011, range(1, 194), 4)],
           "cuhksysu/cropped_images": [f"p{p:05d}_s{k:05d}.jpg" for p, _, k in spread(34574, range(1, 11935), 1)],
           "Shinpuhkan2014dataset/images": [f"{p:03d}_{c:02d}_{k:05d}.jpg" for p, c, k in spread(22504, range(1, 25), 16)]}
    return out


def test_paper_aggregate_published_sizes(releases, no_decoding):
    from test_datasets_fixtures import write_cuhk03_mat      # CUHK03 is a .mat: a tiny one (11 persons)
    for folder, names in aux_names().items():
        touch_all(releases / folder, names)
    write_cuhk03_mat(releases / "cuhk03" / CUHK03_MAT)
    agg = aggregate(PAPER_TRAIN_SETS, releases)
    c = agg.counts()
    got = {n: (int(c.loc[n, "images"]), int(c.loc[n, "identities"])) for n in PAPER_TRAIN_SETS}
    assert got == {"market1501": (12936, 751), "dukemtmcreid": (16522, 702), "cuhk03": (58, 9),
                   "3dpes": (got["3dpes"][0], 93), "cuhk01": (1552, 485), "cuhk02": (3380, 845),
                   "prid2011": (308, 285), "cuhksysu": (34574, 11934), "shinpuhkan2014": (18004, 24),
                   "viper": (506, 316)}
    assert 350 <= got["3dpes"][0] <= 420                      # 80% of the images of 93 random ids of 193
    for n, (images, ids, _, exact) in AGGREGATE_EXPECTED.items():
        if exact and n != "cuhk03": assert got[n] == (images, ids), n   # the table says what the data give
    t = aggregate_table(agg)
    assert t.loc["total", "identities"] == c.loc["total", "identities"] == 16802 - 1367 + 9
    assert t.loc["paper", ["expected_images", "expected_ids"]].tolist() == [111000, 17000]
    p1p4 = aggregate(["cuhk02"], releases, options={"cuhk02": dict(split="torchreid")})
    assert p1p4.counts().loc["cuhk02", ["images", "identities"]].tolist() == [6308, 1577]


AUTHORS = os.environ.get("SPREID_AUTHORS_LISTS")


@pytest.mark.skipif(not AUTHORS, reason="set SPREID_AUTHORS_LISTS to a checkout of emrahbasaran/SPReID")
def test_authors_lists(tmp_path_factory, no_decoding):
    "Their lists name the real releases' files: a tree of exactly those files gives the protocol counts."
    repo, tmp_path = Path(AUTHORS), fast_tmp(tmp_path_factory, "authors")
    lists = {"market": ("train_list/train_market.txt", "evaluation_list/market_query.txt",
                        "evaluation_list/market_gallery.txt"),
             "duke": ("train_list/train_duke.txt", "evaluation_list/duke_query.txt",
                      "evaluation_list/duke_gallery.txt")}
    for files in lists.values():
        touch_all(tmp_path, [l.split()[0] for f in files for l in (repo / f).read_text().splitlines() if l.strip()])
    want = {"market": [[12936, 751, 6], [3368, 750, 6], [15913, 751, 6]],
            "duke": [[16522, 702, 8], [2228, 702, 8], [17661, 1110, 8]]}
    for key, (tr, q, g) in lists.items():
        by_list = read_lists(tmp_path, train=repo / tr, query=repo / q, gallery=repo / g)
        by_folder = load_reid("market1501" if key == "market" else "dukemtmcreid", tmp_path)
        for d in (by_list, by_folder):
            assert d.counts()[["images", "identities", "cameras"]].values.tolist() == want[key], key
        assert sorted(r.path for r in by_list.gallery) == sorted(r.path for r in by_folder.gallery)
        assert [r.pid for r in sorted(by_list.train)] == [r.pid for r in sorted(by_folder.train)]
    c3 = read_lists(tmp_path, query=repo / "evaluation_list/cuhk03_query.txt",
                    gallery=repo / "evaluation_list/cuhk03_gallery.txt", check_files=False)
    assert c3.counts()[["images", "identities", "cameras"]].values.tolist()[1:] == [[942, 100, 1], [994, 100, 1]]
    shutil.rmtree(tmp_path, ignore_errors=True)
