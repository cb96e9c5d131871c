"""Import cost of spreid_nb beyond torch's own import (the foundation's budget: under 1 s).

Run: .venv/bin/python bench/bench_import.py   (median of 5 fresh interpreters)
"""
import statistics
import subprocess
import sys

CODE = ("import time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); "
        "import spreid_nb, spreid_nb.core; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)")

runs = [tuple(map(float, subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()))
        for _ in range(5)]
torch_s = statistics.median(r[0] for r in runs); ours_s = statistics.median(r[1] for r in runs)
print(f"import torch: {torch_s:.3f} s | import spreid_nb + core beyond torch: {ours_s:.3f} s "
      f"| ratio ours/torch: {ours_s / torch_s:.3f}")
