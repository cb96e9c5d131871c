"""Data pipeline speed: drawing the default synthetic benchmark, and loading it at SPReID's input size.

Run: .venv/bin/python bench/bench_data.py   (about a minute; writes figures/bench_data.md)

Targets from issue 5 (the reference column): the default benchmark is written in under 30 s, and
ImageDataset + build_transforms(512, 170) + make_loader with 2 workers sustains at least 200 images/s
(decode, resize, to tensor, ImageNet normalisation, collate). The same pipeline in the main process
(workers=0) and the parser's 512x512 ParsingDataset are printed for context. Numbers are wall-clock on a
shared 2-core machine: other processes running at the same time slow them down (the load average at
the start is printed).
"""
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from spreid_nb.core import Timer, provenance, provenance_line
from spreid_nb.datasets import load_parsing, load_reid
from spreid_nb.transforms import PAPER_SIZES, ImageDataset, ParsingDataset, build_transforms, make_loader
from spreid_nb.synth import SYNTH_PRESETS, synthetic_benchmark

ROOT = Path(__file__).resolve().parents[1]
GEN_TARGET_S, LOAD_TARGET_IPS = 30.0, 200.0


def throughput(loader, passes: int = 3) -> tuple[float, int]:
    "Median images/s over full passes of a loader whose workers are already started; and images per pass."
    it = iter(loader); next(it); del it          # start the (persistent) workers before timing
    rates = []
    for _ in range(passes):
        n, t0 = 0, time.perf_counter()
        for batch in loader: n += batch[0].shape[0]
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), n


def main() -> None:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    cache = Path(tempfile.mkdtemp(prefix="bench_data."))
    try:
        with Timer() as t_gen: roots = synthetic_benchmark(cache, preset="default")
        data = load_reid("market1501", roots["market1501"])
        records = data.train + data.query + data.gallery
        h, w = PAPER_SIZES["spreid"]
        ds = ImageDataset(records, build_transforms(h, w))
        ips2, n = throughput(make_loader(ds, batch_size=32, train=False, workers=2))
        ips0, _ = throughput(make_loader(ds, batch_size=32, train=False, workers=0), passes=1)
        lip = load_parsing("lip", roots["lip"], "train")
        ips_parse, n_parse = throughput(make_loader(ParsingDataset(lip, PAPER_SIZES["parser"]), batch_size=16, train=False, workers=2), passes=1)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    p = SYNTH_PRESETS["default"]
    n_imgs = len(records) + 2 + p["market"]["n_junk"] + p["lip"]["n_train"] + p["lip"]["n_val"]
    rows = [
        ("write the default synthetic benchmark (s)", f"{t_gen.seconds:.1f}", f"< {GEN_TARGET_S:.0f}", t_gen.seconds / GEN_TARGET_S,
         f"{n_imgs} files + {len(records) + p['market']['n_junk'] + p['lip']['n_train'] + p['lip']['n_val']} label PNGs"),
        (f"load at {h}x{w}, 2 workers (images/s)", f"{ips2:.0f}", f">= {LOAD_TARGET_IPS:.0f}", ips2 / LOAD_TARGET_IPS,
         f"{n} synthetic 128x64 JPEGs per pass, batch 32, median of 3 passes"),
        (f"load at {h}x{w}, main process (images/s)", f"{ips0:.0f}", "context", None, "workers=0"),
        (f"parsing pairs at {PAPER_SIZES['parser'][0]}x{PAPER_SIZES['parser'][1]}, 2 workers (images/s)", f"{ips_parse:.0f}",
         "context", None, f"{n_parse} LIP-layout pairs, batch 16"),
    ]
    for name, ours, ref, ratio, note in rows:
        print(f"{name}: ours {ours} | target {ref} | ratio {'' if ratio is None else f'{ratio:.2f}'} ({note})")
    prov = provenance("cpu", data="synthetic default preset", wall_time_s=round(t_gen.seconds, 1))
    lines = ["# Data pipeline benchmark", "",
             "`bench/bench_data.py`: the default synthetic benchmark is drawn into a fresh cache folder, then read back by",
             "the real Market-1501 reader and loaded with `ImageDataset` + `build_transforms(512, 170)` + `make_loader`.",
             "The ratio is ours / target (below 1 is better for time, above 1 is better for images/s).", "",
             "| measure | ours | target | ratio | notes |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {ours} | {ref} | {'' if ratio is None else f'{ratio:.2f}'} | {note} |" for name, ours, ref, ratio, note in rows]
    lines += ["", f"Machine load average at the start: {load:.2f} on {os.cpu_count()} cores (other work on the same cores",
              "slows these numbers down; they are wall-clock, single runs).", "", provenance_line(prov), ""]
    (ROOT / "figures" / "bench_data.md").write_text("\n".join(lines))
    print(f"wrote figures/bench_data.md; {provenance_line(prov)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
