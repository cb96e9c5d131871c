"""`bench/gpu_check.py --smoke`: every part of the prepared GPU check runs on the CPU at tiny sizes
(gloo instead of NCCL), so the script cannot rot between the rare GPU runs. The numbers of a smoke
run mean nothing."""

import os
import subprocess
import sys

import pytest

from conftest import timeout_s


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_part(tmp_path, root):
    out = tmp_path / "bench_gpu.md"
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    # a generous budget: under CI load no part may be skipped (idle: well under two minutes)
    r = subprocess.run(
        [
            sys.executable,
            str(root / "bench" / "gpu_check.py"),
            "--smoke",
            "--out",
            str(out),
            "--budget",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s(180),
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text()
    assert "Failed" not in text and "failed (" not in text and "Skipped" not in text, text
    for part in (
        "1. Training throughput",
        "2. Our `train()`",
        "3. The data loader",
        "4. `torchrun",
        "5. Time to reproduce",
        "6. Market-size evaluation",
        "7. `torch.compile`",
    ):
        assert f"## {part}" in text, part
    assert "backend **gloo**" in text and "DDP path: **ok**" in text, text
    assert "**DIFFERS**" not in text, text
    assert "| **whole paper** |" in text
    assert (
        not (root / "figures" / "bench_gpu.md").exists()
        or "smoke" not in (root / "figures" / "bench_gpu.md").read_text()
    )
