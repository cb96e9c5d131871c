import os
import shutil
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
