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
from spreid_nb.datasets import load_reid
from spreid_nb.metrics import compute_distmat, evaluate_rank
from spreid_nb.paper import write_table
from spreid_nb.parser import load_parser
from spreid_nb.study import _embed_split, train_arm
from spreid_nb.synth import synthetic_benchmark
from spreid_nb.train import config_for

ROOT = Path(__file__).resolve().parents[1]


def per_query_ap(model, arm: str, cfg, root: Path) -> tuple[np.ndarray, np.ndarray]:
    "AP of every query (NaN: no valid match) and its identity, as the study's evaluation embeds them."
    ds, feats = load_reid("market1501", root), {}
    for split, recs in (("q", ds.query), ("g", ds.gallery)):
        feats[split] = _embed_split(model, arm, [arm], cfg, recs, 0.0, 64, {}, 0)[0][arm]
    ids = {s: (np.array([r[1] for r in recs]), np.array([r[2] for r in recs]))
           for s, recs in (("q", ds.query), ("g", ds.gallery))}
    res = evaluate_rank(compute_distmat(feats["q"], feats["g"]), ids["q"][0], ids["g"][0],
                        ids["q"][1], ids["g"][1], return_details=True)
    return 100 * res.all_AP, ids["q"][0]


def identity_se(diff: np.ndarray, pids: np.ndarray, draws: int = 4000, seed: int = 0) -> float:
    "Bootstrap standard error of the mean of `diff` over queries, resampling whole identities."
    ok = ~np.isnan(diff); diff, pids = diff[ok], pids[ok]
    groups = [diff[pids == p] for p in np.unique(pids)]
    rng = np.random.default_rng(seed)
    means = [np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))]).mean()
             for _ in range(draws)]
    return float(np.std(means))


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
                print(f"lr {lr:g} seed {seed} {arm}: mAP {np.nanmean(ap[arm]):.2f}, final loss "
                      f"{np.mean(losses[-10:]):.2f}", flush=True)
            d = ap["learned"] - ap["baseline"]
            rows.append({"re-ID lr": lr, "seed": seed, "baseline mAP": np.nanmean(ap["baseline"]),
                         "learned mAP": np.nanmean(ap["learned"]),
                         "learned - baseline": np.nanmean(d), "SE over test identities":
                         identity_se(d, pids)})
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
