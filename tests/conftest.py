import functools
import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SPREID_THREADS", "2")


@pytest.fixture
def root() -> Path:
    "The repository root."
    return ROOT


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory, request) -> Path:
    """A folder for what one test module's tests share (trained runs, benchmarks), removed when they are done:
    with `tmp_path_retention_policy = "failed"` a whole test run stays under 4 GB of disk, which CI's machine has."""
    d = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield d
    shutil.rmtree(d, ignore_errors=True)


# Subprocess timeouts scale with how fast the machine runs now: a fixed number that suits an idle machine
# fails on a busy one (CI beside other jobs, a laptop on battery). A test states how long its work takes on
# an idle machine; `timeout_s` gives it 5x that, times the measured slowness, times $SPREID_TEST_TIMEOUT_SCALE.
PROBE_IDLE_S = 0.045  # `_probe()` on one idle core of the 2-core AMD EPYC development machine (Python 3.11)


def _probe() -> float:
    "Seconds of a fixed pure-Python loop: one core's speed as this process gets it now."
    t = time.perf_counter(); s = 0
    for i in range(1_000_000): s += i * i
    return time.perf_counter() - t


@functools.lru_cache(maxsize=None)
def slowness() -> float:
    "How many times slower than the idle development machine this one runs now (best of 3 probes), at least 1."
    return max(1.0, min(_probe() for _ in range(3)) / PROBE_IDLE_S)


def timeout_s(idle_s: float) -> float:
    "A timeout for work that takes `idle_s` seconds on an idle machine: 5x, scaled by `slowness` and the env."
    return idle_s * 5 * slowness() * float(os.environ.get("SPREID_TEST_TIMEOUT_SCALE", "1"))
