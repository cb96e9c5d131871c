"""Every reader on a fixture tree in its published layout (written here, tiny images), the error cases,
the loaders, and the synthetic benchmark read back by the real readers."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spreid_nb.datasets import (CUHK03_MAT, LAYOUTS, FolderLayout, ReidRecord, aggregate, flip_labels, load_parsing,
                                load_reid)
from spreid_nb.transforms import PAPER_SIZES, ImageDataset, ParsingDataset, build_transforms, make_loader

torch.set_num_threads(1)


def write_images(root: Path, rels, size=(8, 4), seed=0):
    "Tiny images (JPEG/PNG/BMP by extension) or stray bytes at the relative paths under root."
    rng = np.random.default_rng(seed)
    for rel in rels:
        p = Path(root) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(p)
        else:
            p.write_bytes(b"not an image")


def table(data):
    return data.counts()[["images", "identities", "cameras", "skipped"]].values.tolist()


# ---------------------------------------------------------------- Market-1501 and DukeMTMC-reID

MARKET_FILES = [
    # train: ids 0002 (3 images, 2 cams), 0007 (2 images), 0010 (1 image); a Thumbs.db
    "bounding_box_train/0002_c1s1_000451_03.jpg", "bounding_box_train/0002_c1s1_000551_01.jpg",
    "bounding_box_train/0002_c2s1_000301_01.jpg", "bounding_box_train/0007_c3s3_077419_03.jpg",
    "bounding_box_train/0007_c6s1_000076_02.jpg", "bounding_box_train/0010_c5s1_001476_01.jpg",
    "bounding_box_train/Thumbs.db",
    # query: hand-drawn boxes _00
    "query/0001_c1s1_001051_00.jpg", "query/0001_c4s6_000810_00.jpg", "query/0003_c3s1_000201_00.jpg",
    # gallery: real ids, 2 distractors 0000, 3 junk -1, a Thumbs.db
    "bounding_box_test/0001_c2s1_000301_01.jpg", "bounding_box_test/0001_c5s1_000201_02.jpg",
    "bounding_box_test/0003_c6s1_000201_02.jpg", "bounding_box_test/0000_c6s1_000101_04.jpg",
    "bounding_box_test/0000_c1s1_000101_05.jpg", "bounding_box_test/-1_c1s1_000401_03.jpg",
    "bounding_box_test/-1_c3s1_000401_01.jpg", "bounding_box_test/-1_c2s2_000401_02.jpg",
    "bounding_box_test/Thumbs.db",
]


@pytest.mark.parametrize("folder", ["Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "market1501"])
def test_market1501_protocol(tmp_path, folder):
    write_images(tmp_path / folder, MARKET_FILES)
    d = load_reid("market1501", tmp_path)
    assert d.root == tmp_path / folder
    #            images ids cams skipped
    assert table(d) == [[6, 3, 5, 1], [3, 2, 3, 0], [5, 3, 4, 4]]
    assert sorted({r.pid for r in d.train}) == [0, 1, 2]                       # 0002, 0007, 0010 relabelled in order
    assert {Path(r.path).name[:4]: r.pid for r in d.train}["0010"] == 2
    assert sorted(r.pid for r in d.gallery) == [0, 0, 1, 1, 3]                 # distractors kept, junk dropped
    assert all(0 <= r.camid < 6 for r in d.train + d.query + d.gallery)
    assert {r.camid for r in d.query} == {0, 2, 3}                             # c1, c3, c4 -> 0-based
    reasons = d.skipped_summary().set_index(["split", "reason"])["files"].to_dict()
    assert reasons == {("gallery", "junk (pid -1)"): 3, ("gallery", "stray file (not .jpg)"): 1,
                       ("train", "stray file (not .jpg)"): 1}
    path, pid, camid = d.query[0]                                              # records unpack as 3-tuples
    assert isinstance(d.query[0], ReidRecord) and path.endswith(".jpg")


def test_market1501_relabel_is_sorted_not_filesystem_order(tmp_path):
    files = [f"bounding_box_train/{pid:04d}_c1s1_000{pid:03d}_01.jpg" for pid in (1400, 3, 77, 12)]
    write_images(tmp_path / "Market-1501-v15.09.15", files + MARKET_FILES[7:10] + MARKET_FILES[10:11])
    d = load_reid("market", tmp_path)
    assert {Path(r.path).name[:4]: r.pid for r in d.train} == {"0003": 0, "0012": 1, "0077": 2, "1400": 3}


def test_dukemtmcreid(tmp_path):
    files = ["bounding_box_train/0001_c2_f0046182.jpg", "bounding_box_train/0001_c8_f0100000.jpg",
             "bounding_box_train/0005_c1_f0000001.jpg", "query/0005_c2_f0046985.jpg",
             "bounding_box_test/0005_c7_f0100432.jpg", "bounding_box_test/0009_c3_f0046111.jpg"]
    write_images(tmp_path / "dukemtmc-reid/DukeMTMC-reID", files)
    d = load_reid("dukemtmcreid", tmp_path)
    assert table(d) == [[3, 2, 3, 0], [1, 1, 1, 0], [2, 2, 2, 0]]
    assert sorted(r.camid for r in d.train) == [0, 1, 7]
    write_images(tmp_path / "dukemtmc-reid/DukeMTMC-reID", ["query/0005_c9_f0046985.jpg"])
    d = load_reid("dukemtmcreid", tmp_path)                                    # camera 9: skipped, counted
    assert table(d)[1] == [1, 1, 1, 1] and "outside the layout's 8 cameras" in d.skipped[0].reason
    with pytest.raises(ValueError, match="0005_c9_f0046985.jpg names camera '9'"):
        load_reid("dukemtmcreid", tmp_path, strict=True)


# ---------------------------------------------------------------- the auxiliary sets

AUX = {  # name: (folder under root, files, expected [images, ids, cams, skipped])
    "viper": ("VIPeR", ["cam_a/000_45.bmp", "cam_b/000_90.bmp", "cam_a/002_0.bmp", "cam_b/002_180.bmp",
                        "cam_a/004_90.bmp", "cam_b/004_0.bmp"], [6, 3, 2, 0]),
    "cuhk01": ("cuhk01/campus", ["0001001.png", "0001002.png", "0001003.png", "0001004.png",
                                 "0002001.png", "0002002.png", "0002003.png", "0002004.png", "Thumbs.db"], [8, 2, 2, 1]),
    "cuhk02": ("cuhk02/Dataset", ["P1/cam1/001_1.png", "P1/cam2/001_2.png", "P2/cam1/001_1.png", "P2/cam2/001_2.png",
                                  "P5/cam1/009_1.png", "P5/cam2/009_3.png"], [6, 3, 6, 0]),
    "prid2011": ("prid2011/prid_2011/single_shot", ["cam_a/person_0001.png", "cam_b/person_0001.png",
                                                    "cam_a/person_0201.png", "cam_b/person_0201.png",
                                                    "cam_b/person_0749.png"], [5, 4, 2, 0]),
    "3dpes": ("3DPeS", ["RGB/001_0_1.bmp", "RGB/001_3_2.bmp", "RGB/002_1_1.bmp"], [3, 2, 3, 0]),
    "cuhksysu": ("cuhksysu", ["cropped_images/p11422_s16929_1.jpg", "cropped_images/p11422_s16930_2.jpg",
                              "cropped_images/p00001_s00001.jpg"], [3, 2, 1, 0]),
    "shinpuhkan2014": ("Shinpuhkan2014dataset", ["images/001_01_0001.jpg", "images/001_16_0002.jpg",
                                                 "images/024_03_0001.jpg"], [3, 2, 3, 0]),
}


@pytest.mark.parametrize("name", sorted(AUX))
def test_auxiliary_presets(tmp_path, name):
    folder, files, want = AUX[name]
    write_images(tmp_path / folder, files)
    d = load_reid(name, tmp_path)
    assert d.counts().loc["train"].tolist() == want
    assert d.query == [] and d.gallery == []                                   # all images are training images
    assert sorted({r.pid for r in d.train}) == list(range(want[1]))
    layout = LAYOUTS[name]
    assert layout.published and layout.describe()
    assert layout.certain == (name not in ("3dpes", "cuhksysu", "shinpuhkan2014"))


def test_aux_camera_mapping(tmp_path):
    write_images(tmp_path / "campus", ["0001001.png", "0001002.png", "0001003.png", "0001004.png"])
    assert [r.camid for r in load_reid("cuhk01", tmp_path).train] == [0, 0, 1, 1]   # (index - 1) // 2
    write_images(tmp_path / "Dataset", ["P1/cam1/001_1.png", "P3/cam2/001_1.png"])
    assert sorted(r.camid for r in load_reid("cuhk02", tmp_path).train) == [0, 5]


def test_user_defined_layout(tmp_path):
    grid = FolderLayout(name="grid-like", folders=("underground_reid",), splits={"train": "probe", "gallery": "gallery"},
                        pattern=r"(?P<pid>\d{4})_(?P<cam>\d)_\d+\.jpeg", exts=(".jpeg",), example="0001_1_25004.jpeg")
    write_images(tmp_path / "underground_reid", ["probe/0001_1_25004.jpeg", "probe/0002_2_1.jpeg",
                                                  "gallery/0000_3_1.jpeg", "gallery/0001_4_9.jpeg"])
    d = load_reid(grid, tmp_path)
    assert table(d) == [[2, 2, 2, 0], [0, 0, 0, 0], [2, 2, 2, 0]]


# ---------------------------------------------------------------- CUHK03

PERSONS = (3, 2, 2, 2, 2)          # persons per camera pair
KEEP = (0, 1, 5, 6)                # image cells filled: two per view; the other 6 of 10 are empty


def cuhk03_image(variant, pair, person, img):
    rng = np.random.default_rng([variant == "detected", pair, person, img])
    return rng.integers(0, 255, (6 + img % 3, 3, 3), dtype=np.uint8)   # H x W x 3, H varies


def write_cuhk03_mat(path: Path, test=((1, 1), (2, 1))):
    "cuhk-03.mat as MATLAB v7.3 stores it: cells of object references, arrays transposed."
    import h5py
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")

        def put(arr):
            name = f"r{len(refs)}"
            refs.create_dataset(name, data=arr)
            return refs[name].ref
        empty = put(np.zeros(2, np.uint64))   # how MATLAB stores an empty cell
        for v in ("labeled", "detected"):
            pairs = []
            for p, n in enumerate(PERSONS, start=1):
                cells = np.empty((n, 10), dtype=h5py.ref_dtype)
                for q in range(1, n + 1):
                    for i in range(10):
                        cells[q - 1, i] = put(cuhk03_image(v, p, q, i).T) if i in KEEP else empty
                pairs.append(put(cells.T))
            f.create_dataset(v, data=np.array([pairs], dtype=h5py.ref_dtype))
        tests = [put(np.array(test, float).T) for _ in range(20)]
        f.create_dataset("testsets", data=np.array([tests], dtype=h5py.ref_dtype))


def test_cuhk03_classic(tmp_path):
    write_cuhk03_mat(tmp_path / "cuhk03" / CUHK03_MAT)
    d = load_reid("cuhk03", tmp_path, variant="labeled")       # labeled, classic split 0
    # 11 persons x 4 images; test ids (1,1), (2,1): view 1 -> query, view 2 -> gallery; 6 empty cells per person
    assert table(d) == [[36, 9, 2, 54], [4, 2, 1, 6], [4, 2, 1, 6]]
    assert sorted({r.pid for r in d.query}) == [1, 4]          # global numbers: pair 2 starts after pair 1's 3 persons
    assert {r.camid for r in d.query} == {0} and {r.camid for r in d.gallery} == {1}
    folder = tmp_path / "cuhk03" / "images_labeled"
    assert sorted(p.name for p in folder.iterdir())[:4] == ["1_001_1_01.png", "1_001_1_02.png", "1_001_2_06.png", "1_001_2_07.png"]
    got = np.asarray(Image.open(folder / "2_002_2_07.png"))
    assert np.array_equal(got, cuhk03_image("labeled", 2, 2, 6))   # transposed back to H x W x 3
    mtime = (folder / "1_001_1_01.png").stat().st_mtime_ns
    assert table(load_reid("cuhk03", tmp_path, variant="labeled")) == table(d)   # reuses the extracted images
    assert (folder / "1_001_1_01.png").stat().st_mtime_ns == mtime
    assert not [p for p in (tmp_path / "cuhk03").iterdir() if p.name.startswith(".")]   # no temp folder left
    det = load_reid("cuhk03", tmp_path, variant="detected", split_id=19)
    assert np.array_equal(np.asarray(Image.open(det.train[0].path)), cuhk03_image("detected", 1, 2, 0))
    both = load_reid("cuhk03", tmp_path, variant="both", test_variant="both")   # the authors' lists
    assert table(both)[:1] == [[72, 9, 2, 108]] and both.counts()["images"].tolist() == [72, 8, 8]
    paper = load_reid("cuhk03", tmp_path)                      # the default: the paper's protocol
    assert table(paper) == [[72, 9, 2, 108], [4, 2, 1, 6], [4, 2, 1, 6]]
    assert {Path(r.path).parent.name for r in paper.query + paper.gallery} == {"images_labeled"}


def test_cuhk03_new_protocol(tmp_path):
    from scipy.io import savemat
    write_cuhk03_mat(tmp_path / "cuhk03" / CUHK03_MAT)
    names, labels, offset = [], [], 0
    for p, n in enumerate(PERSONS, start=1):
        for q in range(1, n + 1):
            for i in KEEP:
                names.append(f"{p}_{q:03d}_{1 if i < 5 else 2}_{i + 1:02d}.png"); labels.append(offset + q)
        offset += n
    labels = np.array(labels)
    train = np.nonzero(labels <= 5)[0] + 1                            # ids 1-5 train, 6-11 test (1-based indices)
    query = np.array([k + 1 for k, nm in enumerate(names) if labels[k] > 5 and nm.split("_")[2] == "1"])
    gallery = np.array([k + 1 for k, nm in enumerate(names) if labels[k] > 5 and nm.split("_")[2] == "2"])
    filelist = np.empty((len(names), 1), dtype=object)
    for k, nm in enumerate(names): filelist[k, 0] = nm
    savemat(tmp_path / "cuhk03" / "cuhk03_new_protocol_config_labeled.mat",
            dict(train_idx=train[:, None], query_idx=query[:, None], gallery_idx=gallery[:, None],
                 labels=labels[:, None], filelist=filelist, camId=np.ones((len(names), 1))))
    d = load_reid("cuhk03", tmp_path, protocol="new")
    assert table(d) == [[20, 5, 2, 0], [12, 6, 1, 0], [12, 6, 1, 0]]
    assert sorted({r.pid for r in d.query}) == list(range(6, 12))      # the config's own labels
    assert sorted({r.pid for r in d.train}) == list(range(5))
    assert all(Path(r.path).is_file() for r in d.train + d.query + d.gallery)
    with pytest.raises(FileNotFoundError, match="cuhk03_new_protocol_config_detected.mat not found"):
        load_reid("cuhk03", tmp_path, protocol="new", variant="detected")


def test_cuhk03_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cuhk-03.mat not found"):
        load_reid("cuhk03", tmp_path)
    import h5py
    (tmp_path / "cuhk03/cuhk03_release").mkdir(parents=True)
    with h5py.File(tmp_path / "cuhk03" / CUHK03_MAT, "w") as f: f.create_dataset("testsets", data=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="has no 'labeled' group"):
        load_reid("cuhk03", tmp_path)
    with h5py.File(tmp_path / "cuhk03" / CUHK03_MAT, "a") as f: f.create_dataset("labeled", data=np.zeros((1, 5)))
    with pytest.raises(ValueError, match="'labeled' holds float64, expected a cell array of object references"):
        load_reid("cuhk03", tmp_path)
    (tmp_path / "cuhk03" / CUHK03_MAT).write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(ValueError, match="is not an HDF5 \\(MATLAB v7.3\\) file"):
        load_reid("cuhk03", tmp_path)
    with pytest.raises(ValueError, match="variant must be"):
        load_reid("cuhk03", tmp_path, variant="hand")


# ---------------------------------------------------------------- CUHK03 as the paper scored it

TEST8 = ((1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (4, 1), (5, 1), (5, 2))   # 8 test ids, 3 train


def test_cuhk03_paper_protocol_scored_single_shot(tmp_path):
    "Defaults: train labeled + detected, test labeled, camera 1 vs 2, [24]'s single-shot CMC."
    import torch.nn as nn
    from spreid_nb.paper import run_features, score_features, scoring_notes
    from spreid_nb.features import load_query_gallery, save_query_gallery
    from spreid_nb.train import features_file, reid_features, resolve_config
    write_cuhk03_mat(tmp_path / "cuhk03" / CUHK03_MAT, test=TEST8)
    d = load_reid("cuhk03", tmp_path)
    # train: 3 ids x 2 kinds x 4 images; query and gallery: 8 ids x 2 labeled images per view
    assert table(d) == [[24, 3, 2, 36], [16, 8, 1, 24], [16, 8, 1, 24]]
    assert {Path(r.path).parent.name for r in d.train} == {"images_labeled", "images_detected"}
    assert {Path(r.path).parent.name for r in d.query + d.gallery} == {"images_labeled"}
    view = lambda recs: ({Path(r.path).name.split("_")[2] for r in recs}, {r.camid for r in recs})
    assert view(d.query) == ({"1"}, {0}) and view(d.gallery) == ({"2"}, {1})
    # the tables' scoring path: the features record their target, score_features picks its protocol
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    feats = reid_features(pool, resolve_config("smoke"), tmp_path, "cuhk03")
    assert str(feats["target"]) == "cuhk03" and len(feats["q_pids"]) == len(feats["g_pids"]) == 16
    ids = np.unique(feats["q_pids"]); eye = np.eye(len(ids), dtype=np.float32)
    onehot = lambda pids: eye[np.searchsorted(ids, pids)]
    perfect = {**feats, "qf": onehot(feats["q_pids"]), "gf": onehot(feats["g_pids"])}
    s = score_features([perfect])
    assert (s["protocol"], s["rank-1"], len(s["cmc"])) == ("cuhk03 single-shot, 100 draws", 100, 8)
    # each identity's first gallery image is its query's nearest, its second the farthest of all:
    # Market's protocol (any true match counts) says rank-1 100; one random image per identity
    # finds the near one half the time
    first = np.r_[True, feats["g_pids"][1:] != feats["g_pids"][:-1]]
    split = {**perfect, "gf": np.where(first[:, None], 1, -1) * perfect["gf"]}
    assert score_features([split], protocol="market1501")["rank-1"] == 100.0
    assert 35 <= score_features([split])["rank-1"] <= 65
    shuffled = {**perfect, "g_pids": np.roll(perfect["g_pids"], 2)}   # wrong: near chance (12.5)
    assert score_features([shuffled])["rank-1"] <= 30
    assert len(scoring_notes(["market1501", "cuhk03"])) == 1
    # a run's cached features (as the tables read them) score the same way: the one features format, and
    # the older plain `np.savez` caches, which carry no target
    run = tmp_path / "run"; run.mkdir()
    save_query_gallery(features_file(run, "cuhk03"), perfect)
    assert load_query_gallery(features_file(run, "cuhk03"))["q_paths"] == feats["q_paths"]
    assert score_features([run_features(run, "cuhk03")])["protocol"] == "cuhk03 single-shot, 100 draws"
    old = {k: v for k, v in perfect.items() if k not in ("target", "q_paths", "g_paths")}
    np.savez(features_file(run, "cuhk03"), **old)
    assert score_features([run_features(run, "cuhk03")])["protocol"] == "cuhk03 single-shot, 100 draws"


def _torchreid_cuhk03(monkeypatch):
    "torchreid's CUHK03 class: its file loaded by path, its package imports stubbed (no cv2 here)."
    import importlib.util
    import sys
    import types
    spec = importlib.util.find_spec("torchreid")
    if spec is None: pytest.skip("torchreid (a dev requirement) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "reid/data/datasets/image/cuhk03.py"
    if not path.is_file(): pytest.skip(f"torchreid has no {path}")
    def write_json(obj, p):
        Path(p).write_text(json.dumps(obj))
    utils = types.SimpleNamespace(read_json=lambda p: json.loads(Path(p).read_text()),
                                  write_json=write_json,
                                  mkdir_if_missing=lambda d: os.makedirs(d, exist_ok=True))
    stubs = {"torchreid": {}, "torchreid.reid": {}, "torchreid.reid.utils": vars(utils),
             "torchreid.reid.data": {}, "torchreid.reid.data.datasets": {},
             "torchreid.reid.data.datasets.dataset": {"ImageDataset": object},
             "imageio": {"imwrite": lambda p, a: Image.fromarray(a).save(p)}}
    for name, attrs in stubs.items():
        mod = types.ModuleType(name); mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)
    mspec = importlib.util.spec_from_file_location("_torchreid_cuhk03", path)
    mod = importlib.util.module_from_spec(mspec); mspec.loader.exec_module(mod)
    return mod.CUHK03


def test_cuhk03_matches_torchreid(tmp_path, monkeypatch):
    "torchreid's classic split 0 of the same .mat: labeled train set, test ids and images as ours."
    import scipy.io
    cls = _torchreid_cuhk03(monkeypatch)
    ours_root, theirs = tmp_path / "ours", tmp_path / "theirs" / "cuhk03"
    for r in (ours_root / "cuhk03", theirs): write_cuhk03_mat(r / CUHK03_MAT, test=TEST8)
    names = np.empty((1, 1), dtype=object); names[0, 0] = np.array(["1_001_1_01.png"])
    one = np.ones((1, 1), int)   # the 767/700 config files it also converts: a one-image stand-in
    config = dict(train_idx=one, query_idx=one, gallery_idx=one, labels=one, filelist=names)
    monkeypatch.setattr(scipy.io, "loadmat", lambda p: config)
    import types
    paths = types.SimpleNamespace(   # what preprocess_split reads (its __init__ checks real files)
        raw_mat_path=str(theirs / CUHK03_MAT), imgs_labeled_dir=str(theirs / "images_labeled"),
        imgs_detected_dir=str(theirs / "images_detected"),
        **{f"split_{k}_{v}_json_path": str(theirs / f"splits_{k}_{v}.json")
           for k in ("classic", "new") for v in ("det", "lab")},
        split_new_det_mat_path="det.mat", split_new_lab_mat_path="lab.mat")
    cls.preprocess_split(paths)
    def groups(records):   # image names grouped by identity, with camids: relabelling-proof
        by = {}
        for p, pid, cam in records:
            by.setdefault(pid, set()).add((Path(p).parent.name, Path(p).name, cam))
        return sorted(sorted(g) for g in by.values())
    tr = {v: json.loads((theirs / f"splits_classic_{v[:3]}.json").read_text())[0]
          for v in ("labeled", "detected")}
    lab = load_reid("cuhk03", ours_root, variant="labeled")
    assert groups(lab.train) == groups(tr["labeled"]["train"]) and len(lab.train) == 12
    paper = load_reid("cuhk03", ours_root)   # test ids and labeled images as its split 0 ...
    test = groups(paper.query + paper.gallery)
    assert test == groups(tr["labeled"]["query"]) == groups(tr["labeled"]["gallery"])
    # ... and train = its labeled + detected training images, identity by identity
    merged = {}
    for v in ("labeled", "detected"):
        for p, pid, cam in tr[v]["train"]:
            merged.setdefault(Path(p).name.rsplit("_", 2)[0], set()).add((v, Path(p).name, cam))
    want = sorted(sorted((f"images_{v}", n, c) for v, n, c in g) for g in merged.values())
    assert groups(paper.train) == want
    a, b = (np.asarray(Image.open(r / "images_detected/2_002_2_07.png"))
            for r in (theirs, ours_root / "cuhk03"))
    assert np.array_equal(a, b)


# ---------------------------------------------------------------- LIP

def write_lip(base: Path, original=True, ids=None, shape=(8, 4)):
    ids = ids or {"train": ["77_471474", "100034_483681", "3_1"], "val": ["100_1"]}
    img_dir = base / "TrainVal_images" if original else base
    lab_dir = base / "TrainVal_parsing_annotations" if original else base
    for split, names in ids.items():
        write_images(img_dir, [f"{split}_images/{n}.jpg" for n in names], size=shape)
        (lab_dir / f"{split}_segmentations").mkdir(parents=True, exist_ok=True)
        for k, n in enumerate(names):
            Image.fromarray(((np.arange(np.prod(shape)).reshape(shape) + k) % 20).astype(np.uint8)).save(
                lab_dir / f"{split}_segmentations/{n}.png")
        (img_dir / f"{split}_id.txt").write_text("\n".join(names) + "\n")


@pytest.mark.parametrize("original", [True, False])
def test_lip_layouts(tmp_path, original):
    write_lip(tmp_path, original)
    tr, va = load_parsing("lip", tmp_path, "train"), load_parsing("lip", tmp_path, "val")
    assert (len(tr), len(va), tr.skipped, va.skipped) == (3, 1, [], [])
    assert [Path(i).stem for i, _ in tr] == ["77_471474", "100034_483681", "3_1"]   # id-list order
    assert all(Path(i).stem == Path(l).stem and Path(l).suffix == ".png" for i, l in tr)
    assert tr.counts().values.tolist() == [[3, 0]]


def test_lip_doubled_folder_unlisted_and_stray(tmp_path):
    base = tmp_path / "LIP"
    write_lip(base)
    (base / "TrainVal_images").rename(tmp_path / "x")
    (base / "TrainVal_images").mkdir()
    (tmp_path / "x").rename(base / "TrainVal_images" / "TrainVal_images")        # as some unzip tools leave it
    write_images(base / "TrainVal_images/TrainVal_images/train_images", ["9_9.jpg", "desktop.ini"])
    tr = load_parsing("lip", tmp_path, "train")
    assert len(tr) == 3
    assert sorted(s.reason for s in tr.skipped) == ["not in train_id.txt", "stray file (not .jpg)"]


def test_lip_errors(tmp_path):
    write_lip(tmp_path)
    (tmp_path / "TrainVal_parsing_annotations/train_segmentations/3_1.png").unlink()
    with pytest.raises(FileNotFoundError, match="label map .*3_1.png for image .*3_1.jpg does not exist"):
        load_parsing("lip", tmp_path, "train")
    (tmp_path / "TrainVal_images/val_id.txt").write_text("\n")
    with pytest.raises(ValueError, match="split 'val' is empty"):
        load_parsing("lip", tmp_path, "val")
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        load_parsing("lip", tmp_path, "test")
    with pytest.raises(ValueError, match="unknown parsing dataset"):
        load_parsing("atr", tmp_path)


# ---------------------------------------------------------------- copies cut by others; CIHP and VITON

def test_cuhk03_jpg(tmp_path):
    files = ([f"labeled/train/{p:04d}_{i:02d}.jpg" for p in (3, 0) for i in (0, 4, 5, 9)]
             + [f"labeled/val/{p:04d}_{i:02d}.jpg" for p in (0, 1) for i in (1, 6)]
             + ["labeled/val/0002_02.jpg", "labeled/val/0002_12.jpg", "labeled/val/._0000_01.jpg"])
    write_images(tmp_path / "CUHK03_dataset", files)
    d = load_reid("cuhk03_jpg", tmp_path)
    assert table(d) == [[8, 2, 2, 0], [3, 3, 1, 0], [2, 2, 1, 0]]
    assert sorted({r.pid for r in d.train}) == [0, 1] and [r.pid for r in d.query] == [0, 1, 2]
    assert sorted(s.reason for s in d.skipped) == ["hidden file", "names camera '12', outside the layout's 2 cameras"]
    for p in (tmp_path / "CUHK03_dataset/labeled/val").glob("*_06.jpg"): p.unlink()
    with pytest.raises(ValueError, match=r"holds no image of camera B \(05-09\)"):
        load_reid("cuhk03_jpg", tmp_path)
    with pytest.raises(FileNotFoundError, match="no dataset folder found"):
        load_reid("cuhk03_jpg", tmp_path, variant="detected")


def test_market_crops_any_folders(tmp_path):
    write_images(tmp_path, ["pytorch/query/0001/0001_c1s1_001051_00.jpg.png", "pytorch/query/0001/0001_c4s6_000810_00.jpg",
                            "flat/0003_c3s1_000201_00.JPG", "flat/-1_c1s1_000401_03.jpg.png",
                            "flat/0003_c7s1_000201_00.jpg", "flat/desktop.ini"])
    d = load_reid("market1501_crops", tmp_path)
    assert table(d)[1] == [3, 2, 3, 3] and d.train == [] and d.gallery == []
    assert sorted((r.pid, r.camid) for r in d.query) == [(1, 0), (1, 3), (3, 2)]
    s = load_reid("market_crops", tmp_path, query_cams=(0, 2))
    assert [len(s.query), len(s.gallery)] == [2, 1]
    with pytest.raises(ValueError, match="0003_c7s1_000201_00.jpg names camera '7'"):
        load_reid("market1501_crops", tmp_path, strict=True)


def write_pairs(imgs: Path, labs: Path, ids, size=(8, 4)):
    write_images(imgs, [f"{i}.jpg" for i in ids], size=size)
    labs.mkdir(parents=True, exist_ok=True)
    for i in ids: Image.fromarray(np.full(size, 5, np.uint8)).save(labs / f"{i}.png")


def test_cihp_layouts(tmp_path):
    pgn = tmp_path / "CIHP"
    write_pairs(pgn / "images", pgn / "labels", ["0000001", "0000002", "0000003"])
    (pgn / "list").mkdir()
    (pgn / "list/train_id.txt").write_text("0000002\n0000001")
    (pgn / "list/val_id.txt").write_text("0000003\n")
    tr = load_parsing("cihp", tmp_path, "train")
    assert [Path(i).stem for i, _ in tr] == ["0000002", "0000001"]                   # id-list order
    assert [s.reason for s in tr.skipped] == ["not in train_id.txt"]
    rel = tmp_path / "rel/instance-level_human_parsing/Validation"
    write_pairs(rel / "Images", rel / "Category_ids", ["0000004"])
    (rel / "val_id.txt").write_text("0000004\n")
    assert len(load_parsing("cihp", tmp_path / "rel", "val")) == 1
    x, y = ParsingDataset(tr, size=(8, 4))[0]
    assert x.shape == (3, 8, 4) and y.unique().tolist() == [5]


def test_viton_pairs(tmp_path):
    v = tmp_path / "data"
    write_pairs(v / "train/image", v / "train/image-parse", ["000001_0", "000002_0"], size=(16, 12))
    write_pairs(v / "test/image", v / "test/image-parse", ["000003_0"], size=(16, 12))
    (v / "train/image-parse/000009_0.png").write_bytes((v / "train/image-parse/000001_0.png").read_bytes())
    (v / "train/image/notes.txt").write_text("x")
    tr = load_parsing("viton", tmp_path, "train")
    assert len(tr) == 2 and sorted(s.reason for s in tr.skipped) == ["label map without its photo",
                                                                     "stray file (not .jpg)"]
    assert len(load_parsing("viton", tmp_path, "val")) == 1
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_parsing("viton", tmp_path, "trainval")
    (v / "train/image-parse/000002_0.png").unlink()
    with pytest.raises(FileNotFoundError, match="label map .*000002_0.png for image .*000002_0.jpg does not exist"):
        load_parsing("viton", tmp_path, "train")


def test_grayscale_photo_is_rgb(tmp_path):
    Image.fromarray(np.full((8, 4), 77, np.uint8)).save(tmp_path / "grey.jpg")
    Image.fromarray(np.full((8, 4), 2, np.uint8)).save(tmp_path / "grey.png")
    x, y = ParsingDataset([(tmp_path / "grey.jpg", tmp_path / "grey.png")], size=(8, 4))[0]
    assert x.shape == (3, 8, 4) and torch.allclose(x[0], x[2])
    assert ImageDataset([(str(tmp_path / "grey.jpg"), 0, 0)])[0][0].shape == (3, 8, 4)


# ---------------------------------------------------------------- errors a user will meet

def test_reader_errors(tmp_path):
    m = tmp_path / "Market-1501-v15.09.15"
    write_images(m, MARKET_FILES)
    (m / "query" / "0001_c1.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"0001_c1.jpg does not match the layout: expected .*'0002_c1s1_000451_03.jpg'"):
        load_reid("market1501", tmp_path, strict=True)
    assert table(load_reid("market1501", tmp_path))[1] == [3, 2, 3, 1]                # skipped and counted
    (m / "query" / "0001_c1.jpg").unlink()
    for p in (m / "query").iterdir(): p.unlink()
    with pytest.raises(ValueError, match=r"split 'query' is empty: no image in .*query"):
        load_reid("market1501", tmp_path)
    (m / "query").rmdir()
    with pytest.raises(FileNotFoundError, match=r"lacks .*Market-1501-v15.09.15/query"):
        load_reid("market1501", tmp_path)
    with pytest.raises(FileNotFoundError, match="no dataset folder found under"):
        load_reid("viper", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_reid("market1501", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown re-ID dataset 'msmt17'"):
        load_reid("msmt17", tmp_path)


def test_corrupt_image_and_label_errors(tmp_path):
    write_images(tmp_path, ["ok.jpg"])
    (tmp_path / "bad.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:40])   # truncated JPEG
    ds = ImageDataset([(str(tmp_path / "bad.jpg"), 0, 0)], build_transforms(16, 8))
    with pytest.raises(OSError, match=r"cannot read image .*bad.jpg: corrupt") as e:
        ds[0]
    assert e.value.__cause__ is None and e.value.__suppress_context__           # not a bare PIL traceback
    with pytest.raises(FileNotFoundError, match="missing.jpg does not exist"):
        ImageDataset([(str(tmp_path / "missing.jpg"), 0, 0)])[0]
    Image.fromarray(np.zeros((7, 4), np.uint8)).save(tmp_path / "lab7.png")
    with pytest.raises(ValueError, match=r"lab7.png is 4x7 \(WxH\) but its image .*ok.jpg is 4x8"):
        ParsingDataset([(tmp_path / "ok.jpg", tmp_path / "lab7.png")])[0]
    Image.fromarray(np.full((8, 4), 42, np.uint8)).save(tmp_path / "lab42.png")
    with pytest.raises(ValueError, match=r"lab42.png holds values \[42\]"):
        ParsingDataset([(tmp_path / "ok.jpg", tmp_path / "lab42.png")])[0]
    Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(tmp_path / "labrgb.png")
    with pytest.raises(ValueError, match="labrgb.png has mode RGB"):
        ParsingDataset([(tmp_path / "ok.jpg", tmp_path / "labrgb.png")])[0]
    with pytest.raises(OSError, match="cannot read image .*bad.jpg"):
        ParsingDataset([(tmp_path / "bad.jpg", tmp_path / "lab7.png")])[0]


# ---------------------------------------------------------------- aggregate

def test_aggregate_ten_style(tmp_path):
    write_images(tmp_path / "Market-1501-v15.09.15", MARKET_FILES)
    for name in ("viper", "cuhk01", "prid2011"):
        folder, files, _ = AUX[name]
        write_images(tmp_path / folder, files)
    write_cuhk03_mat(tmp_path / "cuhk03" / CUHK03_MAT)
    names = ["market1501", "cuhk03", "viper", "cuhk01", "prid2011"]
    whole = {"viper": {}, "cuhk01": {}, "prid2011": {},                          # whole sets, no hold-out:
             "cuhk03": dict(variant="both", protocol="classic", split_id=0)}      # the merging mechanism
    agg = aggregate(names, tmp_path, options=whole)
    c = agg.counts()
    assert c.index.tolist() == names + ["total"]
    # market 3 ids; cuhk03 classic split 0, labeled + detected train (9 ids, 72 images); viper 3; cuhk01 2; prid 4
    assert c["identities"].tolist() == [3, 9, 3, 2, 4, 21]
    assert c["images"].tolist() == [6, 72, 6, 8, 5, 97]
    assert c["first_pid"].tolist()[:5] == [0, 3, 12, 15, 17] and c["last_pid"].tolist()[:5] == [2, 11, 14, 16, 20]
    assert c.loc["market1501", "skipped"] == 1 and c.loc["cuhk03", "skipped"] == 108
    assert sorted({r.pid for r in agg.train}) == list(range(21))                 # disjoint, contiguous
    assert len({(d, r.camid) for r, d in zip(agg.train, agg.dsetids)}) == len({r.camid for r in agg.train})
    assert agg.train4()[0][3] == 0 and agg.train4()[-1][3] == 4
    only = aggregate(names, tmp_path, options={"cuhk03": dict(variant="labeled")})
    assert only.counts().loc["cuhk03", "images"] == 36
    assert aggregate(["viper"], [tmp_path], options={"viper": {}}).counts().loc["viper", "images"] == 6
    assert aggregate(["viper"], [tmp_path]).counts().loc["viper", ["images", "identities"]].tolist() == [2, 1]
    with pytest.raises(ValueError, match="2 roots for 1 datasets"):
        aggregate(["viper"], [tmp_path, tmp_path])
    with pytest.raises(ValueError, match=r"no root given for \['viper'\]"):
        aggregate(["viper"], {"market1501": tmp_path})


# ---------------------------------------------------------------- datasets and loaders

def test_image_dataset_and_loader(tmp_path):
    write_images(tmp_path, [f"{i}.jpg" for i in range(10)], size=(16, 8))
    four = [(str(tmp_path / f"{i}.jpg"), i % 4, i % 2, 7) for i in range(10)]     # torchreid's 4-tuples
    ds = ImageDataset(four, build_transforms(32, 16, train=True))
    x, pid, camid, path = ds[3]
    assert x.shape == (3, 32, 16) and (pid, camid) == (3, 1) and path.endswith("3.jpg")
    assert ImageDataset(four)[0][0].dtype == torch.uint8
    order = lambda dl: [p for b in dl for p in b[3]]
    a = make_loader(ds, 4, train=True, workers=2, seed=3)
    b = make_loader(ds, 4, train=True, workers=0, seed=3)
    assert order(a) == order(b) and len(order(a)) == 8                            # same seed, same order; last batch dropped
    assert order(make_loader(ds, 4, train=True, seed=4)) != order(b)
    ev = make_loader(ds, 4, train=False)
    assert order(ev) == [r[0] for r in four]                                       # evaluation keeps order, keeps all
    shards = [order(make_loader(ds, 3, train=True, distributed=True, num_replicas=2, rank=r, seed=1)) for r in (0, 1)]
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == len(shards[1]) == 3


def test_parsing_dataset_flip(tmp_path):
    img = np.zeros((8, 4, 3), np.uint8); img[:, :2] = 255
    Image.fromarray(img).save(tmp_path / "i.jpg", quality=100)
    lab = np.zeros((8, 4), np.uint8); lab[:, :2] = 16; lab[:, 2:] = 17; lab[0, 0] = 255
    Image.fromarray(lab).save(tmp_path / "l.png")
    plain = ParsingDataset([(tmp_path / "i.jpg", tmp_path / "l.png")], size=(16, 8))[0][1]
    assert plain.dtype == torch.long and plain.shape == (16, 8)
    assert plain[5].tolist() == [16] * 4 + [17] * 4 and plain[0, 0] == 255        # nearest: no blended labels
    ds = ParsingDataset([(tmp_path / "i.jpg", tmp_path / "l.png")], size=(16, 8), train=True)
    torch.manual_seed(0)
    seen = {tuple(ds[0][1][0].tolist()) for _ in range(12)}
    assert seen == {tuple(plain[0].tolist()), tuple(flip_labels(plain[0]).tolist())}  # the ignore pixel moves, 16|17 stay
    for _ in range(4): assert ds[0][1][5].tolist() == [16] * 4 + [17] * 4


def test_paper_sizes():
    assert PAPER_SIZES["model_l"] == (492, 164) and PAPER_SIZES["model_l_ft"] == (748, 246)
    assert PAPER_SIZES["spreid"] == (512, 170) and PAPER_SIZES["parser"] == (512, 512)
    tf = build_transforms(*PAPER_SIZES["spreid"])
    assert tf(Image.new("RGB", (64, 128))).shape == (3, 512, 170)


# ---------------------------------------------------------------- the synthetic benchmark through the real readers

def test_synthetic_benchmark_smoke(tmp_path, monkeypatch):
    from spreid_nb.synth import SYNTH_PRESETS, synthetic_benchmark
    monkeypatch.setenv("SPREID_DATA_CACHE", str(tmp_path / "cache"))
    roots = synthetic_benchmark(preset="smoke", seed=5)
    assert roots["market1501"].parent.parent == tmp_path / "cache"
    d = load_reid("market1501", roots["market1501"])
    info = json.loads((roots["market1501"] / "synth_market.json").read_text())
    assert d.counts()[["images", "identities", "cameras"]].values.tolist() == [info["counts"][s] for s in ("train", "query", "gallery")]
    p = SYNTH_PRESETS["smoke"]["market"]
    assert d.counts()["identities"].tolist()[:2] == [p["n_train_ids"], p["n_test_ids"]]
    assert d.counts()["skipped"].tolist() == [1, 0, 1 + p["n_junk"]]
    assert {r.pid for r in d.query} <= {r.pid for r in d.gallery}                # every query has its gallery
    assert sum(r.pid == 0 for r in d.gallery) == p["n_distractors"]
    assert min(info["swapped_pairs"].values()) >= 1
    lip = load_parsing("lip", roots["lip"], "train")
    assert len(lip) == SYNTH_PRESETS["smoke"]["lip"]["n_train"] and lip.skipped == []
    x, y = ParsingDataset(lip[:2], size=(32, 16))[1]
    assert x.shape == (3, 32, 16) and y.shape == (32, 16) and 0 < y.max() < 20
    again = synthetic_benchmark(preset="smoke", seed=5)                            # reused
    assert again == roots and len(list((tmp_path / "cache").iterdir())) == 1


def test_synthetic_is_deterministic(tmp_path):
    from spreid_nb.synth import write_lip_layout, write_market_layout
    for k in (1, 2):
        write_market_layout(tmp_path / str(k), n_train_ids=3, n_test_ids=2, imgs_per_id=4, n_distractors=1, n_junk=1, seed=9)
        write_lip_layout(tmp_path / f"lip{k}", n_train=2, n_val=1, seed=9)
    files = lambda r: sorted(p.relative_to(r) for p in r.rglob("*") if p.is_file())
    for a, b in ((tmp_path / "1", tmp_path / "2"), (tmp_path / "lip1", tmp_path / "lip2")):
        assert files(a) == files(b)
        assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files(a))
    with pytest.raises(ValueError, match="n_cams must be 2..6"):
        write_market_layout(tmp_path / "x", n_cams=8)
