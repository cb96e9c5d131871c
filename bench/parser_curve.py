"""The study's parser with and without the light decoder: five-region mIoU on the synthetic LIP validation
split against training steps, and the cost of a step (issue #24, item 1).

Run (about 25 minutes on 2 CPU cores at the defaults):
    .venv/bin/python bench/parser_curve.py                          # 1500 steps, snapshots every 250
    .venv/bin/python bench/parser_curve.py --steps 40 --every 20 --preset smoke --out /tmp/p.md
    .venv/bin/python bench/parser_curve.py --variants 1 --region-weight 1 --lr 0.1 --steps 1000 \
        --every 250 --out figures/bench_parser_region.md   # the study's parser recipe
Writes figures/bench_parser.md (and .csv).

Each variant is one ordinary parser run (`spreid_nb.train.train`, the synthetic recipe the study uses:
ResNet-18 at output stride 16 + ASPP, 128x64, batch 32), its learning-rate schedule set by the full
`--steps`; a thread copies the run's checkpoint each time it is written (`ckpt_every`), and every copy
is scored afterwards with `spreid_nb.study.parser_region_ious`: the regions are decided as the pooling
sums them. Seconds per step come from the runs' own metrics files (after the first logged row).
The two variants run one after the other on the same benchmark, so their times compare only on an
otherwise idle machine.
"""
import argparse
import shutil
import threading
import time
from pathlib import Path

import pandas as pd

from spreid_nb.core import get_device, load_checkpoint, provenance, set_threads
from spreid_nb.paper import write_table
from spreid_nb.study import parser_region_ious
from spreid_nb.synth import synthetic_benchmark
from spreid_nb.train import config_for, load_trained, train


def _snapshots(ck: Path, into: Path, stop: threading.Event):
    "Copy `ck` to `into/step-N.pt` whenever a new one is written, until `stop` is set."
    seen = None
    while not stop.is_set() or (ck.exists() and ck.stat().st_mtime_ns != seen):
        if ck.exists() and ck.stat().st_mtime_ns != seen:
            seen = ck.stat().st_mtime_ns
            tmp = into / "copying.pt"   # copy, then read the step from the copy: one file, one step
            try: shutil.copy(ck, tmp); step = load_checkpoint(tmp)["step"]
            except (OSError, ValueError): time.sleep(0.2); seen = None; continue  # mid-rename: again
            tmp.rename(into / f"step-{step}.pt")
        time.sleep(0.5)


def curve(decoder: bool, steps: int, every: int, preset: str, out: Path, threads: int,
          region_weight: float = 0.0, lr: float | None = None) -> pd.DataFrame:
    "Train one parser variant for `steps`, snapshot every `every`; score each snapshot."
    cfg = config_for("synthetic", "parser", iters=steps, ckpt_every=every, synth_preset=preset,
                     threads=threads, parser_decoder=decoder, parser_region_weight=region_weight,
                     **({} if lr is None else {"lr": lr}))
    run, snaps = out / f"parser-decoder{int(decoder)}", out / f"snaps-decoder{int(decoder)}"
    shutil.rmtree(run, ignore_errors=True); snaps.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    t = threading.Thread(target=_snapshots, args=(run / "checkpoints" / "last.pt", snaps, stop))
    t.start()
    try: train(cfg, run, evaluate=False, progress=False)
    finally: stop.set(); t.join()
    m = pd.read_csv(run / "metrics.csv")
    k = 1 if len(m) > 2 else 0  # the first logged row holds the warm-up
    per_step = (m.wall_s.iloc[-1] - m.wall_s.iloc[k]) / max(1, m.step.iloc[-1] - m.step.iloc[k])
    lip = synthetic_benchmark(None, preset=preset)["lip"]
    rows = []
    for p in sorted(snaps.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1])):
        parser = load_trained(p)[0]
        ious = parser_region_ious(parser, lip, (cfg.height, cfg.width))
        rows.append(dict(decoder=decoder, step=int(p.stem.split("-")[1]), s_per_step=per_step,
                         **{k: round(v, 1) for k, v in ious.items()}))
        print(f"decoder={decoder} step {rows[-1]['step']}: five-region mIoU {ious['mean']:.1f}, "
              f"shoes {ious.get('shoes', float('nan')):.1f}", flush=True)
    return pd.DataFrame(rows)


def write(df: pd.DataFrame, md: Path, steps: int, preset: str, threads: int,
          region_weight: float = 0.0, lr: float | None = None):
    "The curve as a table (a row per snapshot) and a plot beside it; the cost of a step, as a ratio."
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    md.parent.mkdir(parents=True, exist_ok=True)
    cost = df.groupby("decoder").s_per_step.first()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=90)
    for dec, g in df.groupby("decoder"):
        name = "with decoder (stride 4)" if dec else "without (stride 16, today's)"
        c = "C2" if dec else "C0"
        ax.plot(g.step, g["mean"], marker="o", color=c, label=f"{name}: 5-region mIoU")
        ax.plot(g.step, g["shoes"], ls=":", marker=".", color=c, label=f"{name}: shoes IoU")
    ax.axhline(75, color="grey", lw=0.8, ls="--"); ax.set_xlabel("training steps")
    ax.set_ylim(0, 100)
    ax.set_ylabel("IoU on LIP val (%)"); ax.legend(fontsize=6, loc="upper left"); ax.grid(alpha=0.3)
    fig.tight_layout(); fig.savefig(md.with_suffix(".png")); plt.close(fig)
    cols = ["decoder", "step", "mean", "foreground", "head", "upper_body", "lower_body", "shoes",
            "label_miou"]
    table = df[cols].rename(columns={"mean": "5-region mIoU", "label_miou": "20-label mIoU"})
    ratio = cost.get(True, float("nan")) / cost.get(False, float("nan"))
    prov = provenance(get_device("cpu"), data=f"synthetic benchmark, preset {preset}", steps=steps)
    per = ", ".join(f"{cost[d]:.3f} {'with' if d else 'without'} the decoder" for d in cost.index)
    notes = (f"Seconds per training step: {per}"
             + (f" (ratio {ratio:.2f}x)" if len(cost) == 2 else "") + f", {threads} threads."
             f"\n\n![curve]({md.with_suffix('.png').name})")
    loss = (f"20-label loss + {region_weight:g} x class-weighted five-region loss" if region_weight
            else "the 20-label loss")
    lrs = config_for("synthetic", "parser", **({} if lr is None else {"lr": lr}))
    loss += f"; trunk lr {lrs.lr:g}, new layers {lrs.head_lr:g}"
    which = {(True,): "with the decoder", (False,): "without the decoder"}.get(
        tuple(cost.index), "with and without the decoder")
    write_table(table, md.with_suffix(""), f"The study's parser {which} "
                f"({preset} benchmark, 128x64; {loss})", prov, notes=notes)
    text = md.read_text()
    print(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250, help="snapshot (and score) every N steps")
    p.add_argument("--preset", default="study", help="synthetic benchmark preset")
    p.add_argument("--variants", default="0,1", help="decoder off/on: 0, 1 or 0,1")
    p.add_argument("--region-weight", type=float, default=0.0,
                   help="parser_region_weight: the five-region loss added (0: the 20-label loss only)")
    p.add_argument("--lr", type=float, default=None,
                   help="the trunk's learning rate (default: the synthetic parser recipe's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/spreid-parser-curve", help="runs and snapshots (deleted)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "figures" / "bench_parser.md"))
    a = p.parse_args(argv)
    set_threads(a.threads)
    work = Path(a.work)
    df = pd.concat([curve(bool(int(v)), a.steps, a.every, a.preset, work, a.threads, a.region_weight,
                          a.lr) for v in a.variants.split(",")], ignore_index=True)
    write(df, Path(a.out), a.steps, a.preset, a.threads, a.region_weight, a.lr)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
