"""How far a seed moves the study's arms on one benchmark draw, at two re-ID learning rates: the
training noise behind the study's intervals (issue #24).

Run (about 25 minutes on 2 CPU cores at the defaults: 2 rates x 2 seeds x 2 arms, 250 steps each):
    .venv/bin/python bench/study_seed_noise.py                       # needs the study's parser
    .venv/bin/python bench/study_seed_noise.py --parser runs/study/parser-study-XXXX/parser.pt
    .venv/bin/python bench/study_seed_noise.py --preset smoke --iters 4 --out /tmp/n.md
Writes figures/bench_study_noise.md (and .csv).

Every run trains one arm of `study_semantic_pooling` (`spreid_nb.study.train_arm`, the study's recipe:
ResNet-18 from random weights at output stride 16, batch 32, poly schedule) on the *same* benchmark
draw, so what moves between the seeds of one arm is its initialisation, batches and flips alone. Each
row is scored as the study scores it (query/gallery of that draw, market1501 protocol); beside the
paired difference *learned - baseline* of a seed stands its standard error over the test identities
(a bootstrap of the 50 test identities): the part of a seed's difference that comes from which people
are in the test split rather than from training.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from spreid_nb.core import get_device, provenance, set_threads
from spreid_nb.paper import write_table
from spreid_nb.parser import load_parser
from spreid_nb.study import evaluate_sources, train_arm
from spreid_nb.study_real import bootstrap_difference
from spreid_nb.synth import synthetic_benchmark
from spreid_nb.train import config_for

ROOT = Path(__file__).resolve().parents[1]


def per_query_ap(model, arm: str, cfg, root: Path) -> tuple[np.ndarray, np.ndarray]:
    "AP of every query (in [0, 1]; NaN: no valid match) and its identity, as the study scores them."
    r = evaluate_sources(model, arm, cfg, root, [arm], details=True)[arm]
    return r["ap"], r["q_pids"]


def study_parser(given: str | None) -> Path:
    "The parser checkpoint: `given`, else the study's longest-trained one under runs/study."
    if given: return Path(given)
    import json
    found = sorted(ROOT.glob("runs/study/parser-*/parser.pt"),
                   key=lambda p: json.loads((p.parent / "config.json").read_text()).get("iters", 0))
    if not found:
        raise SystemExit("no parser under runs/study: run nbs/study_semantic_pooling.ipynb first "
                         "or pass --parser")
    return found[-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lrs", default="0.01,0.1", help="re-ID learning rates (the recipe's is 0.01)")
    p.add_argument("--seeds", default="0,10", help="training seeds, all on one benchmark draw")
    p.add_argument("--bench-seed", type=int, default=0, help="which benchmark draw")
    p.add_argument("--iters", type=int, default=250, help="steps per arm (the study's default)")
    p.add_argument("--preset", default="study", help="synthetic benchmark preset")
    p.add_argument("--parser", default=None, help="parser checkpoint of the learned arm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "figures" / "bench_study_noise.md"))
    a = p.parse_args(argv)
    set_threads(a.threads)
    root = synthetic_benchmark(None, seed=a.bench_seed, preset=a.preset)["market1501"]
    pk, rows = study_parser(a.parser), []
    for lr in [float(x) for x in a.lrs.split(",")]:
        for seed in [int(s) for s in a.seeds.split(",")]:
            cfg = config_for("synthetic", seed=seed, iters=a.iters, batch_size=32, output_stride=16,
                             synth_preset=a.preset, lr=lr, threads=a.threads)
            ap = {}
            for arm in ("baseline", "learned"):
                model, losses = train_arm(arm, cfg, root, load_parser(pk) if arm == "learned" else None)
                ap[arm], pids = per_query_ap(model, arm, cfg, root)
                print(f"lr {lr:g} seed {seed} {arm}: mAP {100 * np.nanmean(ap[arm]):.2f}, final loss "
                      f"{np.mean(losses[-10:]):.2f}", flush=True)
            d = bootstrap_difference(ap["learned"], ap["baseline"], pids)
            rows.append({"re-ID lr": lr, "seed": seed, "baseline mAP": 100 * np.nanmean(ap["baseline"]),
                         "learned mAP": 100 * np.nanmean(ap["learned"]),
                         "learned - baseline": d["mean"], "SE over test identities": d["se"]})
    df = pd.DataFrame(rows)
    spread = df.groupby("re-ID lr").agg(lambda s: s.max() - s.min())
    notes = "Range over the seeds (max - min), same benchmark draw:\n\n" + "\n".join(
        f"- lr {lr:g}: baseline {r['baseline mAP']:.2f}, learned {r['learned mAP']:.2f}, "
        f"learned - baseline {r['learned - baseline']:.2f} mAP" for lr, r in spread.iterrows())
    prov = provenance(get_device("cpu"), data=f"synthetic benchmark, preset {a.preset}, draw "
                      f"{a.bench_seed}", iters=a.iters, parser=pk.parent.name)
    write_table(df, Path(a.out).with_suffix(""), f"The study's arms on one benchmark draw: seeds "
                f"against re-ID learning rates ({a.iters} steps, batch 32)", prov, notes=notes)
    print(Path(a.out).read_text())


if __name__ == "__main__":
    main()
