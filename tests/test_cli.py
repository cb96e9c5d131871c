"""The `spreid` command end to end on the smoke synthetic benchmark: every subcommand writes what it says, and bad
input (no images, unreadable images, wrong checkpoint kind, features of another model) gives clear errors and
leaves no partial output behind. One tiny parser, SPReID and baseline are trained once for the module."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import timeout_s
from spreid_nb import cli, inference
from spreid_nb.cli import load_features, main
from spreid_nb.synth import synthetic_benchmark
from spreid_nb.train import config_for, data_roots, evaluate_reid, load_trained, train, TrainConfig

BIN = Path(sys.executable).parent
torch.set_num_threads(1)   # one thread per test process: several processes may share the 2 cores


@pytest.fixture(scope="module")
def runs(module_dir):
    "Tiny trained runs (2 steps each): parser, SPReID on it, baseline; and the smoke benchmark's Market folder."
    d = module_dir
    train(config_for("smoke", "parser", iters=2, threads=1, log_every=1), d / "parser", progress=False, evaluate=False)
    train(config_for("smoke", "spreid", iters=2, threads=1, parser_ckpt=str(d / "parser" / "parser.pt")), d / "spreid",
          progress=False, evaluate=False)
    train(config_for("smoke", iters=2, threads=1), d / "baseline", progress=False, evaluate=False)
    market = synthetic_benchmark(preset="smoke")["market1501"]
    return dict(parser=d / "parser", spreid=d / "spreid", baseline=d / "baseline", market_root=market,
                market=market / "Market-1501-v15.09.15")


@pytest.fixture
def gallery(runs, tmp_path):
    "A folder of 30 gallery images, a corrupt JPEG in a subfolder and a text file."
    g = tmp_path / "gallery"; (g / "sub").mkdir(parents=True)
    for f in sorted((runs["market"] / "bounding_box_test").glob("*.jpg"))[:30]: shutil.copy(f, g / f.name)
    (g / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (g / "notes.txt").write_text("not an image")
    return g


def run(capsys, *args):
    "main(args) -> (exit status, stdout, stderr), with one torch thread (other tests may share the cores)."
    rc = main([str(a) for a in args] + ["--threads", "1"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def files_under(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))


def test_help_is_fast_and_clear(capsys):
    r = subprocess.run([str(BIN / "spreid"), "--help"], capture_output=True, text=True, timeout=timeout_s(15))
    assert r.returncode == 0, r.stderr
    for cmd in ("parse", "extract", "search", "evaluate", "export"): assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-c", "import sys, spreid_nb.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=timeout_s(15))
    assert r.stdout.strip() == "False", "importing spreid_nb.cli must not import torch (slow --help)"
    expect = {"parse": ["--parser", "NAME_labels.png", "example:"], "extract": ["resume", "--chunk-size", "example:"],
              "search": ["ranking.csv", "green", "--rerank", "example:"], "evaluate": ["--dataset", "--root", "example:"],
              "export": ["onnxruntime", "--atol", "dynamic batch", "example:"]}
    for cmd, words in expect.items():
        with pytest.raises(SystemExit) as e: main([cmd, "--help"])
        assert e.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for w in words: assert w in text, (cmd, w)


def test_parse_writes_overlays_and_skips_unreadable(runs, gallery, tmp_path, capsys):
    imgs = sorted(gallery.glob("*.jpg"))[:2]
    rc, out, err = run(capsys, "parse", *imgs, gallery / "sub" / "broken.jpg", "--parser", runs["spreid"], "--out", tmp_path / "p")
    assert rc == 0, err
    assert files_under(tmp_path / "p") == sorted(f"{f.stem}_{s}.png" for f in imgs for s in ("labels", "regions", "labelmap"))
    assert "skipped" in out and "1 unreadable" in out and "at 64x32" in out
    from PIL import Image
    lab = np.asarray(Image.open(tmp_path / "p" / f"{imgs[0].stem}_labelmap.png"))
    assert lab.shape == (128, 64) and lab.max() < 20           # at the image's own size, LIP labels
    rc, out, err = run(capsys, "parse", gallery / "sub", "--parser", runs["parser"] / "parser.pt", "--size", "64x32", "--out", tmp_path / "q")
    assert rc == 1 and "none of the 1 images could be read" in err and not (tmp_path / "q").exists()
    rc, out, err = run(capsys, "parse", imgs[0], "--parser", runs["baseline"], "--out", tmp_path / "q")
    assert rc == 1 and "without a human parser" in err


def test_extract_resumes_and_reports(runs, gallery, tmp_path, capsys, monkeypatch):
    out = tmp_path / "g.npz"
    args = ("extract", gallery, "--model", runs["spreid"], "--out", out, "--chunk-size", "8", "--batch-size", "4",
            "--workers", "0", "--no-progress")
    real, calls = cli.save_features, []
    def interrupted(path, *a, **k):                 # dies while writing the third part file
        calls.append(Path(path).name)
        if len(calls) == 3: raise KeyboardInterrupt
        return real(path, *a, **k)
    monkeypatch.setattr(inference, "save_features", interrupted)
    rc, _, err = run(capsys, *args)
    assert rc == 130 and "interrupted" in err
    assert not out.exists() and files_under(tmp_path / "g.npz.parts") == ["model.json", "part-00000.npz", "part-00001.npz"]
    monkeypatch.setattr(inference, "save_features", real)
    rc, stdout, err = run(capsys, *args)
    assert rc == 0, err
    assert "31 images under" in stdout and "1 other files ignored" in stdout and "16 in part files, 15 to extract" in stdout
    assert "skipped: cannot read image" in stdout and "sub/broken.jpg" in stdout and "1 unreadable images skipped" in stdout
    assert not (tmp_path / "g.npz.parts").exists() and files_under(tmp_path) == ["g.npz", "gallery"] + [f"gallery/{p}" for p in files_under(gallery)]
    f = load_features(out)
    assert (len(f), f.dim, f.model["name"]) == (30, 1536, "spreid_wfg")
    assert f.paths == sorted(p.name for p in gallery.glob("*.jpg")) and f.skipped[0].startswith("sub/broken.jpg\t")
    assert f.known.all() and f.pids.tolist() == [int(p.split("_")[0]) for p in f.paths]
    model, cfg = load_trained(runs["spreid"])
    from spreid_nb.models import extract_features
    from spreid_nb.transforms import build_transforms
    some = [0, 7, 8, 15, 16, 29]                                 # either side of each part boundary
    ref, *_ = extract_features(model, [(str(f.files()[i]), 0, 0) for i in some], transform=build_transforms(64, 32), progress=False)
    np.testing.assert_allclose(f.load()[some], ref, atol=1e-5)   # resumed = the features of each image
    # a folder that grows: only the new images are embedded
    for p in sorted((runs["market"] / "bounding_box_test").glob("*.jpg"))[30:35]: shutil.copy(p, gallery / p.name)
    rc, stdout, err = run(capsys, *args[:-3], "--no-progress")       # the default: 2 loading workers
    assert rc == 0 and "30 already in g.npz, 0 in part files, 6 to extract" in stdout and len(load_features(out)) == 35


def test_extract_bad_input(runs, gallery, tmp_path, capsys):
    (tmp_path / "empty" / "deep").mkdir(parents=True); (tmp_path / "empty" / "deep" / "a.txt").write_text("x")
    rc, _, err = run(capsys, "extract", tmp_path / "empty", "--model", runs["spreid"], "--out", tmp_path / "e.npz")
    assert rc == 1 and err.startswith("spreid extract: error: no images under") and "1 other files" in err
    rc, _, err = run(capsys, "extract", gallery / "sub", "--model", runs["spreid"], "--out", tmp_path / "e.npz", "--no-progress", "--workers", "0")
    assert rc == 1 and "none of the 1 images" in err
    rc, _, err = run(capsys, "extract", gallery, "--model", runs["parser"], "--out", tmp_path / "e.npz")
    assert rc == 1 and "holds a human parser, not a re-ID model" in err
    rc, _, err = run(capsys, "extract", gallery, "--model", gallery / "notes.txt", "--out", tmp_path / "e.npz")
    assert rc == 1 and "refusing to load" in err
    assert not list(tmp_path.glob("e.npz*")) and not list(tmp_path.glob(".e.npz*"))
    # an existing output of another model is refused and left as it was
    rc, _, err = run(capsys, "extract", gallery, "--model", runs["baseline"], "--out", tmp_path / "b.npz", "--no-progress", "--workers", "0")
    assert rc == 0, err
    before = (tmp_path / "b.npz").read_bytes()
    rc, _, err = run(capsys, "extract", gallery, "--model", runs["spreid"], "--out", tmp_path / "b.npz", "--no-progress", "--workers", "0")
    assert rc == 1 and "dimension 512" in err and "another model" in err
    assert (tmp_path / "b.npz").read_bytes() == before and sorted(p.name for p in tmp_path.glob("*b.npz*")) == ["b.npz"]


def test_search_csv_png_and_model_checks(runs, gallery, tmp_path, capsys):
    common = ("--no-progress", "--workers", "0")
    assert run(capsys, "extract", gallery, "--model", runs["spreid"], "--out", tmp_path / "g.npz", *common)[0] == 0
    qdir = tmp_path / "q"; qdir.mkdir()
    for f in sorted((runs["market"] / "query").glob("*.jpg"))[:3]: shutil.copy(f, qdir / f.name)
    rc, out, err = run(capsys, "search", qdir, "--gallery", tmp_path / "g.npz", "--topk", "5", "--out", tmp_path / "s")
    assert rc == 0, err
    assert files_under(tmp_path / "s") == ["ranking.csv", "ranking.png"]
    with open(tmp_path / "s" / "ranking.csv") as f: rows = list(csv.DictReader(f))
    assert len(rows) == 15 and [int(r["rank"]) for r in rows[:5]] == [1, 2, 3, 4, 5]
    # the blocked search equals a full distance matrix sorted stably
    g = load_features(tmp_path / "g.npz")
    model, cfg = load_trained(runs["spreid"])
    from spreid_nb.models import extract_features
    from spreid_nb.transforms import build_transforms
    from spreid_nb.metrics import compute_distmat
    qf, *_ = extract_features(model, [(str(p), 0, 0) for p in sorted(qdir.glob("*.jpg"))], transform=build_transforms(64, 32), progress=False)
    full = compute_distmat(qf, g.load())
    want = np.argsort(full, 1, kind="stable")[:, :5]
    got = np.array([[g.paths.index(Path(r["gallery"]).name) for r in rows[i * 5:(i + 1) * 5]] for i in range(3)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose([float(r["distance"]) for r in rows[:5]], np.sort(full[0])[:5], rtol=1e-5)
    for r in rows: assert r["match"] == str(int(r["query_pid"] == r["gallery_pid"]))
    from PIL import Image
    w, h = Image.open(tmp_path / "s" / "ranking.png").size
    assert w > 6 * 64 and h > 3 * 128
    # one image, re-ranked; and the gallery's own features as the query
    rc, _, err = run(capsys, "search", qdir / rows[0]["query"].split("/")[-1], "--gallery", tmp_path / "g.npz", "--rerank", "--out", tmp_path / "r")
    assert rc == 0, err
    with open(tmp_path / "r" / "ranking.csv") as f: assert len(list(csv.DictReader(f))) == 10
    assert run(capsys, "search", tmp_path / "g.npz", "--gallery", tmp_path / "g.npz", "--topk", "1", "--out", tmp_path / "self")[0] == 0
    with open(tmp_path / "self" / "ranking.csv") as f: assert all(r["query"] == r["gallery"] for r in csv.DictReader(f))
    # features of another model: refused, nothing written
    assert run(capsys, "extract", gallery, "--model", runs["baseline"], "--out", tmp_path / "b.npz", *common)[0] == 0
    rc, _, err = run(capsys, "search", tmp_path / "b.npz", "--gallery", tmp_path / "g.npz", "--out", tmp_path / "bad")
    assert rc == 1 and "dimension 512" in err
    rc, _, err = run(capsys, "search", qdir, "--gallery", tmp_path / "g.npz", "--model", runs["baseline"], "--out", tmp_path / "bad")
    assert rc == 1 and "dimension 512" in err
    rc, _, err = run(capsys, "search", qdir, "--gallery", gallery / "notes.txt", "--out", tmp_path / "bad")
    assert rc == 1 and "not a features file" in err
    assert not (tmp_path / "bad").exists()


def test_evaluate_matches_evaluate_reid(runs, tmp_path, capsys):
    # the baseline (half the compute of SPReID): the command only plumbs the run's config into evaluate_reid
    rc, out, err = run(capsys, "evaluate", "--dataset", "market1501", "--root", runs["market_root"], "--model", runs["baseline"],
                       "--out", tmp_path / "res.json")
    assert rc == 0, err
    res = json.loads((tmp_path / "res.json").read_text())
    model, cfg = load_trained(runs["baseline"])
    c = TrainConfig(**{**cfg, "parser_size": tuple(cfg["parser_size"])})
    direct = evaluate_reid(model, c, data_roots(c), torch.device("cpu"))
    assert res["plain"] == direct["plain"] and res["n_query"] == direct["n_query"] > 0
    assert "| Euclidean |" in out and f"{direct['plain']['mAP']:.1f}" in out
    rc, _, err = run(capsys, "evaluate", "--dataset", "market1501", "--root", tmp_path / "nowhere", "--model", runs["spreid"])
    assert rc == 1 and "is not a folder" in err


def test_export_onnx_matches_pytorch(runs, gallery, tmp_path, capsys):
    import onnxruntime as ort
    out = tmp_path / "m" / "spreid.onnx"
    rc, stdout, err = run(capsys, "export", "--model", runs["spreid"], "--format", "onnx", "--out", out, "--check-images", gallery)
    assert rc == 0, err
    assert "max abs difference" in stdout and files_under(tmp_path / "m") == ["spreid.onnx"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["spreid_nb.model"])["feature_dim"] == 1536
    model, cfg = load_trained(runs["spreid"])
    from spreid_nb.transforms import build_transforms, read_image
    tf = build_transforms(64, 32, parser_size=tuple(cfg["parser_size"]))   # SPReID: the parser's own copy too
    pairs = [tf(read_image(p)) for p in sorted(gallery.glob("*.jpg"))[:7]]   # a batch size not exported with
    x, xp = (torch.stack([pr[i] for pr in pairs]) for i in (0, 1))
    with torch.inference_mode(): ref = model(x, xp).numpy()
    got = sess.run(["features"], {"images": x.numpy(), "parser_images": xp.numpy()})[0]
    assert got.shape == (7, 1536) and np.abs(got - ref).max() < 1e-4
    rc, _, err = run(capsys, "export", "--model", runs["parser"], "--out", tmp_path / "p.onnx")
    assert rc == 1 and "holds a human parser" in err and not list(tmp_path.glob("*p.onnx*"))


def test_train_help_speaks_of_the_command_line():
    "`python -m spreid_nb.train --help`: every option explained, choices that can be typed, booleans as words."
    import contextlib, io
    from spreid_nb import train as T
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        T.main(["--help"])
    text = " ".join(out.getvalue().split())
    assert "None" not in text and "tqdm" not in text
    for opt in ("--no-progress print no progress bar", "--no-eval skip the evaluation", "{paper,smoke,synthetic}",
                "booleans: true/false/1/0"):
        assert opt in text, opt
