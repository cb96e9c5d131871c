"""Subprocess timeouts in the tests scale with the machine's measured speed (tests/conftest.py), never a fixed number
that suits only an idle machine."""
import re
from pathlib import Path

import conftest


def test_timeout_scales_with_measured_slowness(monkeypatch):
    conftest.slowness.cache_clear()
    monkeypatch.setattr(conftest, "_probe", lambda: conftest.PROBE_IDLE_S / 2)   # faster than the reference
    assert conftest.slowness() == 1.0 and conftest.timeout_s(60) == 300
    conftest.slowness.cache_clear()
    monkeypatch.setattr(conftest, "_probe", lambda: conftest.PROBE_IDLE_S * 4)   # a busy machine: 4x slower
    assert conftest.slowness() == 4.0 and conftest.timeout_s(60) == 1200
    monkeypatch.setenv("SPREID_TEST_TIMEOUT_SCALE", "2")
    assert conftest.timeout_s(60) == 2400
    conftest.slowness.cache_clear()


def test_no_fixed_subprocess_timeout_in_tests():
    "Every `timeout=` of a subprocess call in tests/ comes from `timeout_s`."
    fixed = []
    for f in sorted(Path(__file__).parent.glob("test_*.py")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if re.search(r"\btimeout=\d", line): fixed.append(f"{f.name}:{n}: {line.strip()}")
    assert not fixed, "\n".join(fixed)
