"""Training runs end to end: exact resume after SIGKILL, torchrun with 2 processes, safe checkpoints, bad input."""
import csv
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import timeout_s
import torch

from spreid_nb.train import config_for, load_checkpoint, train

PY = sys.executable
TINY = ["--preset", "smoke", "--no-progress", "--no-eval", "--set", "threads=1", "--set", "iters=8", "--set", "ckpt_every=3"]


def _run(args, env=None, check=True):
    e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    r = subprocess.run([PY, "-m", "spreid_nb.train", *args], capture_output=True, text=True, env=e, timeout=timeout_s(120))
    if check and r.returncode != 0: raise AssertionError(f"train failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def _losses(run: Path) -> list[float]:
    with open(run / "metrics.csv") as f: return [float(r["loss"]) for r in csv.DictReader(f)]


def test_resume_after_sigkill_is_exact(tmp_path):
    _run([*TINY, "--out", str(tmp_path / "full")])
    killed = _run([*TINY, "--out", str(tmp_path / "killed")], env={"SPREID_KILL_AFTER_STEP": "5"}, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    mid = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert mid["step"] == 3 and mid["optimizer"]["state"], "a checkpoint mid-run keeps the momentum"
    _run([*TINY, "--out", str(tmp_path / "killed"), "--resume"])
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs after resume"
    # equal weights 5 steps after the resume need the momentum restored exactly, not only the weights
    assert "optimizer" not in a and "optimizer" not in b, "a finished run's checkpoint is the model alone"
    assert _losses(tmp_path / "full") == _losses(tmp_path / "killed")


def test_torchrun_two_processes_match_one(tmp_path):
    common = ["--preset", "smoke", "--no-progress", "--no-eval", "--set", "threads=1", "--set", "iters=5",
              "--set", "bn=frozen", "--set", "batch_size=8", "--set", "log_every=1"]
    _run([*common, "--out", str(tmp_path / "one")])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
                        "-m", "spreid_nb.train", *common, "--out", str(tmp_path / "two")],
                       capture_output=True, text=True, env=env, timeout=timeout_s(120))
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 5
    # same global batches; gradients averaged over ranks; BN frozen: equal up to float summation order
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-4, (one, two)


def test_malicious_checkpoint_is_refused_on_resume(tmp_path):
    marker = tmp_path / "pwned"
    class Evil:
        def __reduce__(self): return (os.system, (f"touch {marker}",))
    ck = tmp_path / "run" / "checkpoints" / "last.pt"
    _run([*TINY, "--set", "iters=3", "--out", str(tmp_path / "run")])
    with open(ck, "wb") as f: pickle.dump({"model": Evil(), "step": 1}, f)
    r = _run([*TINY, "--set", "iters=3", "--out", str(tmp_path / "run"), "--resume"], check=False)
    assert r.returncode != 0 and "refusing to load" in r.stderr
    assert not marker.exists()


def test_bad_input_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown config key"):
        config_for("smoke", lerning_rate=0.1)
    with pytest.raises(ValueError, match="cannot take 8x4 images"):
        train(config_for("smoke", height=8, width=4, threads=1), tmp_path / "a", progress=False, evaluate=False)
    with pytest.raises(ValueError, match="classifier expects num_classes=5000"):
        train(config_for("smoke", num_classes=5000, threads=1), tmp_path / "b", progress=False, evaluate=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        train(config_for("smoke", data="market1501", data_root=str(tmp_path / "empty"), threads=1), tmp_path / "c",
              progress=False, evaluate=False)
    for d in "abc": assert not (tmp_path / d / "checkpoints").exists()
    r = _run(["--preset", "smoke", "--set", "bogus=1", "--out", str(tmp_path / "d")], check=False)
    assert r.returncode == 2 and "unknown config key(s) ['bogus']" in r.stderr


def test_moved_runs_folder_is_reused(tmp_path, monkeypatch):
    "Runs moved to another folder, their data elsewhere too, keep their names: nothing trains again."
    import shutil
    from spreid_nb import train as T
    from spreid_nb.plan import Plan

    def chain(top: Path, trained: dict) -> dict:
        "A parser, SPReID on it, a baseline and its fine-tuning: files of one run start another."
        plan, runs = Plan("smoke", top / "runs", dict(threads=1, data_root=str(top / "data"))), {}
        steps = [plan.parser, lambda: plan.spreid("wfg", shared=True, runs=runs),
                 lambda: plan.baseline("L"), lambda: plan.finetuned(plan.baseline("L"), runs)]
        for step in steps:  # each after the runs it starts from
            r = step(); trained[r.key] = plan.run(r, runs).name
        return trained

    before = chain(tmp_path / "a", {})
    cfg = (tmp_path / "a" / "runs" / before["spreid_wfg-shared"] / "config.json").read_text()
    assert f'"../{before["parser"]}/parser.pt"' in cfg, "another run's file is stored relative"
    shutil.move(tmp_path / "a", tmp_path / "b")

    def refuse(cfg, out, *a, **k): raise AssertionError(f"{Path(out).name} trained again")
    monkeypatch.setattr(T, "train", refuse)
    assert chain(tmp_path / "b", {}) == before
