"""The training loop's overhead: `spreid_nb.train.train` beside a plain PyTorch loop on the same
model, data and recipe, timed in interleaved rounds of one run (the goal: our time per step at most
1.05x the plain loop's).

Run (about 3 minutes on 2 CPU cores):
    .venv/bin/python bench/bench_train_loop.py    # ResNet-18 baseline, 128x64, batch 32, 5 rounds
    .venv/bin/python bench/bench_train_loop.py --preset smoke --steps 6 --rounds 2 --out /tmp/b.md
Writes figures/bench_train_loop.md.

Both loops train the model `build_run_model` builds for the config, on the synthetic benchmark's
training set read by the same `Dataset` with the same number of DataLoader workers, with Nesterov
SGD, the stepped poly schedule and gradient clipping. Ours is the whole `train()` (metrics file,
checkpoint at the end, progress bar to /dev/null, no evaluation); the plain loop is the textbook one
(`DataLoader(shuffle=True)`, forward, cross-entropy, backward, clip, step). Each loop runs `--steps`
steps; the second half is timed (the first half warms up the workers and the allocator): ours from
the timestamps of its own metrics rows, the plain loop with `perf_counter` at the same steps. A
round runs both, in alternating order; the ratio of each round is ours/plain time per step, and the
reported figure is the median over rounds.
"""

import argparse
import contextlib
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from spreid_nb.core import (
    Timer,
    atomic_write,
    get_device,
    provenance,
    provenance_line,
    seed_everything,
    set_threads,
)
from spreid_nb.train import build_run_model, config_for, data_roots, lr_factor, train, train_dataset


def ours(cfg, steps: int) -> float:
    "Seconds per step of `train()` over its second half, from its metrics rows (at steps/2, steps)."
    with (
        tempfile.TemporaryDirectory() as d,
        open(os.devnull, "w") as null,
        contextlib.redirect_stderr(null),
    ):
        run = train(cfg, Path(d) / "run", progress=True, evaluate=False)
        with open(run / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    last = rows[-1]  # img_per_s of the interval since the previous logged row
    return cfg.batch_size / float(last["img_per_s"])


def plain(cfg, steps: int, make_model=None) -> float:
    """Seconds per step of a textbook PyTorch loop over its second half (same data and recipe;
    `cfg`'s device, bf16 autocast and channels_last); `make_model(n_classes)` gives the model
    (default: ours)."""
    seed_everything(cfg.seed)
    dev = get_device(cfg.device)
    dataset, n_ids = train_dataset(cfg, data_roots(cfg))
    model = (make_model(n_ids) if make_model else build_run_model(cfg, n_ids)).to(dev).train()
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(it, cfg.iters))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=cfg.workers,
        pin_memory=dev.type == "cuda",
    )
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    half, t0, i = steps // 2, None, -1
    for i, (x, y, *_) in enumerate(loader):
        if i == half:
            sync()
            t0 = time.perf_counter()
        if i == steps:
            break
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True).long()
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
            out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        sched.step()
    if i < steps:
        raise ValueError(f"the training set holds {i} batches, fewer than --steps {steps}")
    sync()
    return (time.perf_counter() - t0) / (steps - half)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--preset", default="synthetic", help="the TrainConfig preset (its model, size, batch)"
    )
    ap.add_argument(
        "--steps", type=int, default=24, help="steps per loop and round; the second half is timed"
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds first (first-call costs of both loops)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parents[1] / "figures" / "bench_train_loop.md"),
    )
    a = ap.parse_args()
    if a.steps < 2 or a.steps % 2:
        ap.error("--steps must be even and >= 2")
    set_threads(a.threads)
    cfg = config_for(
        a.preset,
        iters=a.steps,
        log_every=a.steps // 2,
        ckpt_every=a.steps,
        flip=False,
        threads=a.threads,
    )
    data_roots(cfg)  # draw the synthetic benchmark before any timing
    for _ in range(a.warmup):
        ours(cfg, a.steps), plain(cfg, a.steps)
    load0, rows = os.getloadavg(), []
    with Timer() as wall:
        for r in range(a.rounds):
            order = [("ours", ours), ("plain", plain)][:: 1 if r % 2 == 0 else -1]
            t = {name: fn(cfg, a.steps) for name, fn in order}
            rows.append(t)
            print(
                f"round {r + 1}: ours {1000 * t['ours']:.1f} ms/step, plain {1000 * t['plain']:.1f}"
                f" ms/step, ours/plain {t['ours'] / t['plain']:.3f}",
                flush=True,
            )
    load1 = os.getloadavg()
    ratios = [t["ours"] / t["plain"] for t in rows]
    med = statistics.median(ratios)
    mo, mp = (statistics.median(t[k] for t in rows) for k in ("ours", "plain"))
    prov = provenance(
        "cpu",
        preset=f"{a.preset}, {a.rounds} rounds of {a.steps} steps",
        wall_time_s=round(wall.seconds, 1),
    )
    L = [
        "# Training-loop overhead: `train()` beside a plain PyTorch loop (CPU)",
        "",
        (
            f"Model: {cfg.model} {cfg.backbone}, {cfg.height}x{cfg.width}, batch {cfg.batch_size},"
            f" {cfg.workers} DataLoader workers, {a.threads} threads, float32, no flips; the"
            f" `{a.preset}` preset's synthetic benchmark. After {a.warmup} untimed round(s),"
            f" {a.rounds} rounds, each running both loops for {a.steps} steps in alternating order"
            f" and timing steps {a.steps // 2 + 1}-{a.steps}. Load average (1, 5, 15 min)"
            f" {', '.join(f'{v:.2f}' for v in load0)} at start and"
            f" {', '.join(f'{v:.2f}' for v in load1)} at end (other jobs share this machine's 2"
            " cores; the interleaving spreads their load over both loops). Written by"
            " `bench/bench_train_loop.py`."
        ),
        "",
        "| round | ours ms/step | plain ms/step | ours / plain time |",
        "|---|---|---|---|",
    ]
    L += [
        f"| {i + 1} | {1000 * t['ours']:.1f} | {1000 * t['plain']:.1f} |"
        f" {t['ours'] / t['plain']:.3f} |"
        for i, t in enumerate(rows)
    ]
    verdict = "within" if med <= 1.05 else "**over**"
    L += [
        f"| median | {1000 * mo:.1f} | {1000 * mp:.1f} | **{med:.3f}** |",
        "",
        (
            f"Median over rounds of ours/plain time per step: **{med:.3f}** ({verdict} the 1.05"
            f" budget; as a speed ratio ours/plain {1 / med:.3f}). Ratio of the median times:"
            f" {mo / mp:.3f}."
        ),
        "",
        provenance_line(prov, keys=("preset", "commit", "device", "wall_time_s", "time_utc")),
        "",
    ]
    with atomic_write(a.out, "w") as f:
        f.write("\n".join(L))
    print("\n".join(L))


if __name__ == "__main__":
    main()
