"""Runs and outputs that cannot be corrupted (issue 15): one writer per run folder and output
file (two trainings, two extractions, as real processes), an interrupted extraction rerun, every
config value checked before the run folder exists, honest inputs (re-ranking matrices, features
files, EXIF orientation), bytes-safe paths under a strict UTF-8 stdout, papermill parameters
checked first, the user's umask, and short messages."""
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import timeout_s
from spreid_nb.cli import _write_npy, extract_folder, load_features
from spreid_nb.core import atomic_write, one_writer, save_json, worker_errors
from spreid_nb.synth import synthetic_benchmark

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SPREID_THREADS": "1",
       "PYTHONIOENCODING": "utf-8:strict",
       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
TRAIN = ["--preset", "smoke", "--no-progress", "--no-eval", "--set", "threads=1"]  # spreid_nb.train
torch.set_num_threads(1)

# A process that imports everything first, then waits for its go file: two of them start their real
# work (`spreid_nb.train.main` or `spreid_nb.cli.main`) a known moment apart, whatever the load.
_READY = ("import sys, time, pathlib, spreid_nb.train, spreid_nb.cli\n"
          "go = pathlib.Path(sys.argv[1]); pathlib.Path(sys.argv[1] + '.ready').touch()\n"
          "while not go.exists(): time.sleep(0.02)\n"
          "main = {'train': spreid_nb.train.main, 'cli': spreid_nb.cli.main}[sys.argv[2]]\n"
          "try: rc = main(sys.argv[3:])\n"
          "except SystemExit as e: rc = e.code\n"
          "sys.exit(rc if isinstance(rc, (int, str)) else 0)\n")


def _start(tmp: Path, name: str, kind: str, args: list) -> tuple[subprocess.Popen, Path]:
    go = tmp / f"go-{name}"
    p = subprocess.Popen([PY, "-c", _READY, str(go), kind, *map(str, args)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p, go


def _wait_for(path: Path, timeout: float | None = None):
    t = time.time()
    while not path.exists():
        if time.time() - t > (timeout or timeout_s(30)): raise AssertionError(f"{path} did not appear")
        time.sleep(0.02)


def _race(tmp: Path, kind: str, args_a: list, args_b: list, lock: Path):
    "Start A; once A holds `lock`, start B. Returns both (rc, stdout, stderr) and A's pid."
    (a, go_a), (b, go_b) = _start(tmp, "a", kind, args_a), _start(tmp, "b", kind, args_b)
    for g in (go_a, go_b): _wait_for(Path(str(g) + ".ready"))
    go_a.touch(); _wait_for(lock)
    go_b.touch()
    rb = b.communicate(timeout=timeout_s(60)); ra = a.communicate(timeout=timeout_s(60))
    return (a.returncode, *ra), (b.returncode, *rb), a.pid


@pytest.fixture(scope="module")
def race(module_dir):
    "Two trainings on one folder, the second with another lr, started while the first runs."
    d = module_dir / "race"; d.mkdir(); out = d / "run"
    a, b, pid = _race(d, "train", [*TRAIN, "--set", "iters=6", "--out", out],
                      [*TRAIN, "--set", "iters=6", "--set", "lr=0.02", "--out", out], out / ".lock")
    return dict(a=a, b=b, pid=pid, out=out)


def test_two_trainings_on_one_folder(race):
    (rc_a, _, err_a), (rc_b, _, err_b), out = race["a"], race["b"], race["out"]
    assert rc_a == 0, err_a[-2000:]
    busy = f"run folder {out} is being written by another process (pid {race['pid']} on "
    assert rc_b == 1 and busy in err_b, err_b
    assert "Traceback" not in err_b and len(err_b.strip().splitlines()) == 1, err_b
    assert json.loads((out / "config.json").read_text())["lr"] == 0.01     # the first run's config
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,")
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 7))
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["config"]["lr"] == 0.01
    assert not (out / ".lock").exists()


@pytest.fixture(scope="module")
def gallery(module_dir):
    "24 Market-style images of the smoke benchmark."
    g = module_dir / "gal" / "gallery"; g.mkdir(parents=True)
    market = synthetic_benchmark(preset="smoke")["market1501"] / "Market-1501-v15.09.15"
    market = market / "bounding_box_test"
    for f in sorted(market.glob("*.jpg"))[:24]: (g / f.name).write_bytes(f.read_bytes())
    return g


def test_two_extractions_into_one_file(race, gallery, tmp_path):
    out = tmp_path / "g.npz"
    args = ["extract", gallery, "--model", race["out"], "--out", out, "--no-progress", "--workers",
            "0",
            "--batch-size", "2", "--chunk-size", "2"]
    a, b, pid = _race(tmp_path, "cli", args, args, tmp_path / ".g.npz.lock")
    (rc_a, _, err_a), (rc_b, _, err_b) = a, b
    assert rc_a == 0, err_a[-2000:]
    busy = f"features file {out} is being written by another process (pid {pid} on "
    assert rc_b == 1 and busy in err_b, err_b
    assert len(load_features(out)) == 24
    assert sorted(os.listdir(tmp_path)) == ["g.npz", "go-a", "go-a.ready", "go-b", "go-b.ready"]
    said = []
    extract_folder(gallery, race["out"], out, progress=False, log=said.append)
    assert "nothing to do" in said[-1], said   # the next run is not blocked


def test_interrupted_extraction_then_rerun(race, gallery, tmp_path):
    out = tmp_path / "g.npz"; parts = tmp_path / "g.npz.parts"
    args = ["-m", "spreid_nb.cli", "extract", gallery, "--model", race["out"], "--out", out,
            "--no-progress",
            "--workers", "0", "--batch-size", "1", "--chunk-size", "1"]
    killed = subprocess.run([PY, *map(str, args)], env={**ENV, "SPREID_KILL_AFTER_PART": "3"},
                            capture_output=True, timeout=timeout_s(60))
    assert killed.returncode == -signal.SIGKILL and parts.is_dir() and not out.exists()
    (parts / ".part-00099.npz.abc.tmp").write_bytes(b"half")       # being written when killed
    r = subprocess.run([PY, *map(str, args)], env=ENV, capture_output=True, text=True, timeout=timeout_s(60))
    assert r.returncode == 0, r.stderr
    assert "0 already in g.npz, 3 in part files, 21 to extract" in r.stdout, r.stdout
    assert not parts.exists() and len(load_features(out)) == 24
    whole = extract_folder(gallery, race["out"], tmp_path / "whole.npz", progress=False, log=print)
    a, b = load_features(out), load_features(whole)
    order = np.argsort(a.paths)
    assert sorted(a.paths) == sorted(b.paths)
    np.testing.assert_allclose(a.load()[order], b.load()[np.argsort(b.paths)], atol=1e-5)
    # a run killed before it wrote model.json leaves an empty parts folder: the next run goes on
    (tmp_path / "e.npz.parts").mkdir()
    extract_folder(gallery, race["out"], tmp_path / "e.npz", progress=False, log=lambda s: None)
    assert len(load_features(tmp_path / "e.npz")) == 24 and not (tmp_path / "e.npz.parts").exists()


@pytest.mark.parametrize("kv, msg", [
    ("iters=2.5", "config iters=2.5: expected int, got float"),
    ("iters=abc", "config iters='abc': expected int, got str"),
    ("height=7", "config height x width=7x32: the model baseline/resnet18 cannot take 7x32 images"),
    ("workers=-1", "config workers=-1: must be >= 0"),
])
def test_config_checked_before_the_folder_exists(kv, msg, tmp_path, capsys):
    from spreid_nb.train import main
    with pytest.raises(SystemExit): main([*TRAIN, "--set", kv, "--out", str(tmp_path / "run")])
    assert msg in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_init_from_must_be_a_reid_checkpoint(race, tmp_path, capsys):
    from spreid_nb.parser import HumanParser, save_parser
    from spreid_nb.train import config_for, train
    pp = save_parser(HumanParser(backbone="resnet18"), tmp_path / "parser.pt")
    cfg = config_for("smoke", "finetune", init_from=str(pp))
    with pytest.raises(ValueError, match=f"{pp} is a human parser; init_from takes a re-ID"):
        train(cfg, tmp_path / "ft", progress=False, evaluate=False)
    assert not (tmp_path / "ft").exists()


def test_truncated_checkpoint_is_called_truncated(race, gallery, tmp_path, capsys):
    from spreid_nb import cli
    ck = race["out"] / "checkpoints" / "last.pt"; cut = tmp_path / "cut.pt"
    cut.write_bytes(ck.read_bytes()[:ck.stat().st_size // 2])
    rc = cli.main(["extract", str(gallery), "--model", str(cut), "--out", str(tmp_path / "x")])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"checkpoint {cut} is truncated (" in err and len(err.strip().splitlines()) == 1, err


def test_rerank_refuses_matrices_that_are_not_distances():
    from spreid_nb.metrics import compute_distmat
    from spreid_nb.rerank import re_ranking
    rng = np.random.default_rng(0)
    qf, gf = rng.standard_normal((5, 8)), rng.standard_normal((20, 8))
    qg, qq, gg = compute_distmat(qf, gf), compute_distmat(qf, qf), compute_distmat(gf, gf)
    re_ranking(qg, qq, gg, k1=4, k2=2)
    for args, msg in [((qg, qq, np.triu(gg)), "g_g_dist is not symmetric"),
                      ((qg, qq - 1, gg), "q_q_dist has negative"),
                      ((qg, qq + 1, gg), "q_q_dist has a non-zero diagonal"),
                      ((qg, qq, gg[:, :3]), "g_g_dist must have shape")]:
        with pytest.raises(ValueError, match=msg): re_ranking(*args, k1=4, k2=2)


def test_damaged_features_file_is_refused(race, gallery, tmp_path, capsys):
    from spreid_nb import cli
    good = cli.extract_folder(gallery, race["out"], tmp_path / "g.npz", progress=False, log=print)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as zi, zipfile.ZipFile(bad, "w") as zo:
        for n in zi.namelist():
            if n == "pids.npy": _write_npy(zo, "pids", load_features(good).pids[:-3])
            else: zo.writestr(n, zi.read(n))
    query = str(next(gallery.iterdir()))
    assert cli.main(["search", query, "--gallery", str(bad), "--out", str(tmp_path / "s")]) == 1
    said = f"{bad}: array 'pids' has 21 rows for 24 paths: a damaged features file"
    assert said in capsys.readouterr().err


def test_exif_rotated_photo_embeds_as_upright(race, tmp_path):
    from spreid_nb import cli
    g = tmp_path / "exif"; g.mkdir()
    px = (np.random.default_rng(0).random((64, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(px).save(g / "0001_c1s1_000001_00.png")
    ex = Image.Exif(); ex[0x0112] = 6           # stored turned left, shown upright by a viewer
    Image.fromarray(np.rot90(px, 1).copy()).save(g / "0001_c2s1_000001_00.png", exif=ex.tobytes())
    e = cli.extract_folder(g, race["out"], tmp_path / "e.npz", progress=False, log=print)
    f = load_features(e).load()
    np.testing.assert_allclose(f[0], f[1], atol=1e-5)


def test_non_utf8_paths_under_strict_stdout(race, gallery, tmp_path):
    q, g = tmp_path / os.fsdecode(b"requ\xeate"), tmp_path / os.fsdecode(b"galer\xeda")
    q.mkdir(); g.mkdir()
    for i, f in enumerate(sorted(gallery.iterdir())[:6]):
        (g / os.fsdecode(f.name.encode()[:-4] + b"-\xff.jpg")).write_bytes(f.read_bytes())
        if i < 2: (q / f.name).write_bytes(f.read_bytes())
    def run(*a):
        cmd = [PY, "-m", "spreid_nb.cli", *map(str, a)]
        return subprocess.run(cmd, env=ENV, capture_output=True, timeout=timeout_s(60))
    r = run("extract", g, "--model", race["out"], "--out", tmp_path / "g.npz", "--no-progress",
            "--workers", "0")
    assert r.returncode == 0 and "galer\ufffda" in r.stdout.decode(), r.stderr.decode()
    assert not (tmp_path / "g.npz.parts").exists()
    r = run("search", q, "--gallery", tmp_path / "g.npz", "--out", tmp_path / "s", "--topk", "3")
    assert r.returncode == 0, r.stderr.decode()
    csv_bytes = (tmp_path / "s" / "ranking.csv").read_bytes()
    assert b"requ\xeate" in csv_bytes and b"-\xff.jpg" in csv_bytes       # the names as on disk
    assert len(csv_bytes.splitlines()) == 1 + 2 * 3


def test_files_follow_the_umask(tmp_path):
    modes = []
    for mask in (0o022, 0o077):
        old = os.umask(mask)
        try: modes.append(save_json({}, tmp_path / f"{mask}.json").stat().st_mode & 0o777)
        finally: os.umask(old)
    assert modes == [0o644, 0o600]


def test_worker_failure_is_one_line(tmp_path):
    from spreid_nb.transforms import ImageDataset, build_transforms
    bad = tmp_path / "0001_c1s1_000001_00.jpg"; bad.write_bytes(b"not a jpeg")
    ds = ImageDataset([(str(bad), 0, 0)], build_transforms(64, 32))
    loader = torch.utils.data.DataLoader(ds, num_workers=1)
    with pytest.raises(OSError) as e, worker_errors(): list(loader)
    assert str(e.value).startswith(f"cannot read image {bad}: corrupt or not an image")
    assert "\n" not in str(e.value)


def test_papermill_parameters_checked_first(tmp_path):
    figs = tmp_path / "figs"
    cmd = [PY, "-m", "papermill", ROOT / "nbs" / "reproduce_table1.ipynb", tmp_path / "o.ipynb",
           "--cwd", ROOT / "nbs", "-k", "python3", "-p", "preset", "nonexistent",
           "-p", "out_dir", figs,
           "-p", "runs_root", tmp_path / "runs"]
    r = subprocess.run(list(map(str, cmd)), env=ENV, capture_output=True, text=True, timeout=timeout_s(60))
    assert r.returncode != 0
    said = "parameter preset='nonexistent': expected one of ['paper', 'smoke', 'synthetic']"
    assert said in r.stderr + r.stdout
    assert not figs.exists() and not (tmp_path / "runs").exists()
    assert not (ROOT / "figures" / "nonexistent").exists()


def test_one_writer_in_process(tmp_path):
    with one_writer(tmp_path / "f.txt", "table"):
        code = ("import sys\nfrom spreid_nb.core import one_writer\n"
                "with one_writer(sys.argv[1], 'table'): pass")
        r = subprocess.run([PY, "-c", code, str(tmp_path / "f.txt")], env=ENV, capture_output=True,
                           text=True, timeout=timeout_s(30))
        busy = f"table {tmp_path / 'f.txt'} is being written by another process (pid {os.getpid()}"
        assert r.returncode == 1 and busy in r.stderr
    with one_writer(tmp_path / "f.txt", "table"), atomic_write(tmp_path / "f.txt", "w") as f:
        f.write("x")
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]


# ---- issue 26: search, import and training that never hand back a wrong answer ----------------

_IDENT = dict(name="baseline", config_hash="c0", weights="w0", feature_dim=8, height=64, width=32,
              flip=False, checkpoint="")


def _feats_file(path: Path, n: int, seed: int = 0, names: str = "g", ident: dict = _IDENT) -> Path:
    from spreid_nb.features import save_features
    f = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    paths = [f"{i + 1:04d}_c{1 + i % 2}s1_{i:06d}_00.jpg" for i in range(n)]
    return save_features(path, [f], paths, path.parent / names, ident)


def _cli(capsys, *args) -> tuple[int, str]:
    from spreid_nb import cli
    rc = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


needs_faiss = pytest.mark.skipif(not __import__("spreid_nb.index").index.have_faiss(),
                                 reason="faiss is not installed")


@needs_faiss
def test_index_never_ranks_missing_neighbours(tmp_path):
    from spreid_nb.inference import index_features, search_gallery
    g, q = _feats_file(tmp_path / "g.npz", 400), _feats_file(tmp_path / "q.npz", 5, seed=1)
    index_features(g, kind="IVF64,Flat", log=lambda s: None)
    said = []
    search_gallery(q, g, tmp_path / "s", topk=60, nprobe=1, log=said.append)
    rows = (tmp_path / "s" / "ranking.csv").read_text().splitlines()[1:]
    dists = [float(r.split(",")[5]) for r in rows]
    assert max(dists) < 1e3 and len(rows) < 5 * 60          # padding (-1) is never a match
    assert any("found only" in s and "--nprobe" in s for s in said), said


@needs_faiss
def test_index_is_bound_to_the_features_it_holds(tmp_path):
    from spreid_nb.inference import index_features, search_gallery
    g, q = _feats_file(tmp_path / "g.npz", 50), _feats_file(tmp_path / "q.npz", 3, seed=1)
    index_features(g, log=lambda s: None)
    _feats_file(g, 50, seed=7)                   # re-extracted: same names, same model, new values
    with pytest.raises(ValueError, match=r"g\.npz\.faiss was built from other feature values"):
        search_gallery(q, g, tmp_path / "s", log=lambda s: None)
    assert not (tmp_path / "s").exists()


@needs_faiss
def test_bad_index_files_are_one_line(tmp_path, capsys):
    from spreid_nb.inference import index_features
    g, q = _feats_file(tmp_path / "g.npz", 50), _feats_file(tmp_path / "q.npz", 3, seed=1)
    p = index_features(g, log=lambda s: None); good = p.read_bytes()
    out = tmp_path / "s"
    for bad, name in [(good[:len(good) // 2], p), (os.urandom(300), p), (b"", p)]:
        p.write_bytes(bad)
        rc, err = _cli(capsys, "search", q, "--gallery", g, "--out", out)
        assert rc == 1 and f"index {p}" in err and len(err.strip().splitlines()) == 1, err
    p.write_bytes(good); Path(f"{p}.json").write_text("{not json")
    rc, err = _cli(capsys, "search", q, "--gallery", g, "--out", out)
    assert rc == 1 and f"{p}.json" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@needs_faiss
@pytest.mark.parametrize("opt", [("--nprobe", "0"), ("--nprobe", "-2"), ("--ef", "-1"),
                                 ("--ef", "0")])
def test_search_parameters_must_be_positive(opt, tmp_path, capsys):
    from spreid_nb.inference import index_features
    g, q = _feats_file(tmp_path / "g.npz", 50), _feats_file(tmp_path / "q.npz", 3, seed=1)
    index_features(g, log=lambda s: None)
    rc, err = _cli(capsys, "search", q, "--gallery", g, "--out", tmp_path / "s", *opt)
    assert rc == 1 and f"{opt[0][2:]}={opt[1]}: must be >= 1" in err, err
    assert not (tmp_path / "s").exists()


@needs_faiss
def test_ivfpq_on_too_few_vectors_is_a_message(tmp_path, capsys):
    g = _feats_file(tmp_path / "g.npz", 40)
    rc, err = _cli(capsys, "index", g, "--kind", "ivfpq")
    assert rc == 1 and "ivfpq" in err and "40 vectors" in err, err
    assert sorted(os.listdir(tmp_path)) == ["g.npz"]


def test_features_and_indexes_must_be_finite(tmp_path):
    from spreid_nb.features import save_features
    f = np.ones((3, 8), np.float32); f[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"row 1 \(b\.jpg\) are not finite"):
        save_features(tmp_path / "g.npz", [f], ["a.jpg", "b.jpg", "c.jpg"], tmp_path, _IDENT)
    assert not (tmp_path / "g.npz").exists()
    if __import__("spreid_nb.index").index.have_faiss():
        from spreid_nb.index import build_index
        with pytest.raises(ValueError, match="not finite"): build_index(f, "hnsw")


def test_diverging_training_stops(tmp_path, capsys):
    from spreid_nb.train import main
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main([*TRAIN, "--set", "iters=8", "--set", "lr=1e30", "--set", "ckpt_every=1",
              "--out", str(out)])
    assert e.value.code not in (0, None)
    err = capsys.readouterr().err + str(e.value.code)     # sys.exit(message): printed on exit
    assert "training diverged at step " in err and "lower lr" in err, err
    assert not (out / "learning_curve.png").exists() and not (out / "eval.json").exists()
    ck = out / "checkpoints" / "last.pt"
    if ck.exists():
        sd = torch.load(ck, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def test_config_lr_nan_names_the_value(tmp_path, capsys):
    from spreid_nb.train import main
    with pytest.raises(SystemExit): main([*TRAIN, "--set", "lr=NaN", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert "config lr=nan: must be a finite number" in err and "got float" not in err, err


def test_imported_weights_are_checked(tmp_path):
    from spreid_nb.backbones import build_backbone, load_backbone_weights
    m = build_backbone("resnet18", pretrained=None)
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    cases = {"nan": ("conv1.weight", float("nan"), "not finite"),
             "var": ("bn1.running_var", -1.0, "negative variance"),
             "int": ("conv1.weight", None, "holds torch.int64 values where the model has floating")}
    for name, (key, val, msg) in cases.items():
        bad = {k: v.clone() for k, v in sd.items()}
        if val is None: bad[key] = bad[key].long()
        else: bad[key].view(-1)[0] = val
        p = tmp_path / f"{name}.pt"; torch.save(bad, p)
        with pytest.raises(ValueError, match=f"{p}: {key} .*{msg}"):
            load_backbone_weights(build_backbone("resnet18", pretrained=None), p)


def test_refused_pickle_on_every_weights_path(tmp_path, capsys):
    from spreid_nb.train import main
    evil = tmp_path / "evil.pt"; torch.save({"x": Path("/")}, evil)   # needs a non-weights unpickle
    for key in ("pretrained", "parser_ckpt"):
        out = tmp_path / key
        extra = ["--stage", "spreid"] if key == "parser_ckpt" else []
        with pytest.raises(SystemExit) as e:
            main([*TRAIN, *extra, "--set", f"{key}={evil}", "--out", str(out)])
        err = capsys.readouterr().err + str(e.value.code)
        assert f"refusing to load {evil}" in err and "Traceback" not in err, err
        assert not out.exists()


def test_a_string_is_not_a_dataset():
    from spreid_nb.models import build_model, extract_features
    from spreid_nb.transforms import build_transforms
    with pytest.raises(ValueError, match="data is a path .*not a Dataset"):
        extract_features(build_model("baseline", backbone="resnet18", num_classes=2,
                                     pretrained=None), "some/folder",
                         transform=build_transforms(64, 32), progress=False)


def test_one_identity_is_refused_for_training(tmp_path):
    from spreid_nb.train import config_for, train_dataset
    (tmp_path / "a").mkdir()
    for i in range(3):
        Image.new("RGB", (32, 64)).save(tmp_path / "a" / f"0001_c{i + 1}s1_000001_00.jpg")
    (tmp_path / "t.txt").write_text("".join(f"a/0001_c{i + 1}s1_000001_00.jpg 0\n"
                                            for i in range(3)))
    cfg = config_for("smoke", "train", data="list:train=t.txt", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="1 identity"):
        train_dataset(cfg, {"list:train=t.txt": tmp_path, cfg.target: tmp_path})
    from spreid_nb.train import main       # through the command: no run folder is left behind
    with pytest.raises(SystemExit) as e:
        main([*TRAIN, "--set", "data=list:train=t.txt", "--set", f"data_root={tmp_path}",
              "--out", str(tmp_path / "run")])
    assert "1 identity" in str(e.value.code) and not (tmp_path / "run").exists()


def _tiff(path: Path, a: np.ndarray) -> Path:
    Image.fromarray(a).save(path); return path


def test_images_of_every_bit_depth(tmp_path):
    from spreid_nb.transforms import read_image
    half = np.full((8, 4), 0.5, np.float32)
    assert np.asarray(read_image(_tiff(tmp_path / "f01.tif", half)))[0, 0, 0] == 128
    assert np.asarray(read_image(_tiff(tmp_path / "f255.tif", half * 255)))[0, 0, 0] == 128
    g16 = tmp_path / "g16.png"; Image.fromarray(np.full((8, 4), 32896, np.uint16)).save(g16)
    assert np.asarray(read_image(g16))[0, 0, 0] == 128
    i32 = _tiff(tmp_path / "i32.tif", np.full((8, 4), 1 << 20, np.int32))
    for bad, why in [(_tiff(tmp_path / "nan.tif", half * np.nan), "not finite"),
                     (_tiff(tmp_path / "neg.tif", half - 1), "values from -0.5"), (i32, "32-bit")]:
        with pytest.raises(OSError, match=f"cannot read image {bad}: .*{why}"): read_image(bad)


def test_list_files_are_confined_and_checked(tmp_path):
    from spreid_nb.datasets import read_list
    root = tmp_path / "root"; (root / "a").mkdir(parents=True)
    for n in ("0001_c1s1_000001_00.jpg", "0002_c2s1_000001_00.jpg"):
        Image.new("RGB", (32, 64)).save(root / "a" / n)
    out = tmp_path / "0003_c1s1_000001_00.jpg"; Image.new("RGB", (32, 64)).save(out)
    lst = tmp_path / "l.txt"
    good = "a/0001_c1s1_000001_00.jpg 0\na/0002_c2s1_000001_00.jpg 1\n"
    for extra in (f"{out} 2\n", "../0003_c1s1_000001_00.jpg 2\n"):
        lst.write_text(good + extra)
        with pytest.raises(ValueError, match=r"l\.txt, line 3: .* outside the data root"):
            read_list(lst, root)
        assert len(read_list(lst, root, allow_outside=True)[0]) == 3
    lst.write_text(good + "a/0001_c1s1_000001_00.jpg 0\n")
    with pytest.raises(ValueError, match=r"l\.txt, line 3: .* repeats line 1"): read_list(lst, root)
    lst.write_bytes(good.encode() + b"a/caf\xe9.jpg 1\n")
    with pytest.raises(ValueError, match=r"image list .*l\.txt is not UTF-8 text"):
        read_list(lst, root)
    lst.write_text(good + "x" * 100_000 + " y z\n")
    with pytest.raises(ValueError) as e: read_list(lst, root)
    assert "l.txt, line 3" in str(e.value) and len(str(e.value)) < 400


def test_sigterm_saves_and_exits_like_sigint(tmp_path):
    out = tmp_path / "run"
    cmd = [PY, "-m", "spreid_nb.train", *TRAIN, "--set", "iters=100000", "--set", "log_every=1",
           "--set", "ckpt_every=100000", "--out", str(out)]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = time.time()
    while not ((out / "metrics.csv").exists()
               and len((out / "metrics.csv").read_text().splitlines()) > 2):
        assert time.time() - t < timeout_s(60) and p.poll() is None, p.communicate()
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=timeout_s(30))
    assert p.returncode == 143, err
    assert "interrupted at step" in err and "--resume" in err and "Traceback" not in err, err
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] >= 2


@needs_faiss
def test_search_outputs_whole_or_nothing(tmp_path, monkeypatch):
    import errno
    from spreid_nb import inference
    from spreid_nb.core import save_json
    g, q = _feats_file(tmp_path / "g.npz", 30), _feats_file(tmp_path / "q.npz", 3, seed=1)
    def full(*a, **k): raise OSError(errno.ENOSPC, "No space left on device")
    with monkeypatch.context() as m:
        m.setattr(inference, "ranking_grid", full)
        with pytest.raises(OSError): inference.search_gallery(q, g, tmp_path / "s", log=print)
    assert not (tmp_path / "s").exists()
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", full)
        with pytest.raises(OSError, match=r"No space left on device: .*x\.json"):
            save_json({}, tmp_path / "x.json")
        with pytest.raises(OSError):
            inference.index_features(g, log=print)
    assert sorted(os.listdir(tmp_path)) == ["g.npz", "q.npz"]


def test_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    g, q = _feats_file(tmp_path / "g.npz", 30), _feats_file(tmp_path / "q.npz", 3, seed=1)
    rc, err = _cli(capsys, "search", q, "--gallery", g, "--out", g)
    assert rc == 1 and f"--out {g} is a file, not a folder" in err, err
    rc, err = _cli(capsys, "index", g, "--out", tmp_path)
    assert rc == 1 and f"--out {tmp_path} is a folder" in err, err


def test_zero_queries_and_unreadable_queries(race, gallery, tmp_path, capsys):
    from spreid_nb.inference import extract_folder
    g = extract_folder(gallery, race["out"], tmp_path / "g.npz", progress=False, log=print)
    from spreid_nb.features import load_features, save_features
    q0 = save_features(tmp_path / "q0.npz", [], [], gallery, load_features(g).model)
    rc, err = _cli(capsys, "search", q0, "--gallery", g, "--out", tmp_path / "s")
    assert rc == 1 and f"{q0} holds no queries" in err, err
    qd = tmp_path / "q"; qd.mkdir()
    for f in sorted(gallery.iterdir())[:2]: (qd / f.name).write_bytes(f.read_bytes())
    (qd / "0009_c1s1_000001_00.jpg").write_bytes(b"not a jpeg")
    rc, err = _cli(capsys, "search", qd, "--gallery", g, "--out", tmp_path / "s")
    assert rc == 0, err
    assert len((tmp_path / "s" / "ranking.csv").read_text().splitlines()) == 1 + 2 * 10
