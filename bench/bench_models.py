"""Forward throughput of our backbones, parser and SPReID beside a plain torchvision forward of the same
backbone, and the cost of SPReID's pooling head relative to the re-ID backbone (the budget: at most 3%).

Run (about 10 minutes on 2 CPU cores; noisy when other processes share the cores):
    .venv/bin/python bench/bench_models.py            # 512x170 re-ID, 512x512 parser, batch 15, median of 3
    .venv/bin/python bench/bench_models.py --reid 128 64 --parser 128 128 --batch 4 --out /tmp/b.md   # smoke
Writes figures/bench_models.md.
"""
import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torchvision

from spreid_nb.backbones import build_backbone
from spreid_nb.core import Timer, atomic_write, provenance, provenance_line, set_threads
from spreid_nb.models import baseline, spreid
from spreid_nb.parser import HumanParser
from spreid_nb.pooling import SPReIDHead


def interleaved_medians(fns, rounds):
    "Median wall time of each callable in `fns` over `rounds` round-robin rounds (noise hits all alike), inference mode."
    ts = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(rounds):
            for k, fn in fns.items():
                t = time.perf_counter(); fn(); ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def torchvision_model(name):
    "The plain torchvision classifier, randomly initialised, eval mode."
    kw = dict(aux_logits=False, init_weights=False) if name == "inception_v3" else {}
    return getattr(torchvision.models, name)(weights=None, **kw).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["inception_v3", "resnet50", "resnet152"])
    ap.add_argument("--reid", nargs=2, type=int, default=[512, 170], help="re-ID input h w")
    ap.add_argument("--parser", nargs=2, type=int, default=[512, 512], help="parser input h w")
    ap.add_argument("--batch", type=int, default=15)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per measurement (median)")
    ap.add_argument("--head-iters", type=int, default=30, help="runs of the (cheap) pooling head, spread over the rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "figures" / "bench_models.md"))
    a = ap.parse_args()
    set_threads(a.threads)
    torch.manual_seed(0)
    B, (rh, rw), (ph, pw) = a.batch, a.reid, a.parser
    x_reid, x_parser = torch.randn(B, 3, rh, rw), torch.randn(B, 3, ph, pw)
    load0 = os.getloadavg()[0]
    paper_parser = HumanParser("inception_v3").eval()
    rows, head_rows = [], []
    with Timer() as wall:
        for name in a.backbones:
            tv, ours, parser = torchvision_model(name), build_backbone(name).eval(), HumanParser(name).eval()
            model = spreid("wfg", shared_backbone=True, backbone=name, parser=paper_parser,
                           reid_size=(rh, rw), parser_size=(ph, pw)).eval()
            with torch.inference_mode():
                fmap = ours(x_reid)
                regions = paper_parser.region_probs(x_parser[:1]).expand(B, -1, -1, -1).contiguous()
            head = SPReIDHead(ours.out_channels, foreground=True)
            # one round = each model once (+ the cheap head several times), so that load from other processes
            # falls on all of them alike; the head is timed next to the backbone it is compared with
            head_runs = max(1, a.head_iters // a.iters)
            fns = {"tv": lambda: tv(x_reid), "bb": lambda: ours(x_reid),
                   "head": lambda: [head(fmap, regions) for _ in range(head_runs)],
                   "tv512": lambda: tv(x_parser), "parser": lambda: parser(x_parser),
                   "paper_parser": lambda: paper_parser(x_parser), "full": lambda: model(x_parser)}
            t = interleaved_medians(fns, a.iters)
            t_head = t["head"] / head_runs
            head_rows.append((name, tuple(fmap.shape[-2:]), tuple(regions.shape[-2:]), t["bb"], t_head))
            print(f"{name}: torchvision {B / t['tv']:.2f} img/s | our backbone {B / t['bb']:.2f} img/s "
                  f"(ratio ours/torchvision time {t['bb'] / t['tv']:.3f}) | head {1000 * t_head:.1f} ms = {100 * t_head / t['bb']:.2f}% of backbone", flush=True)
            print(f"{name}: torchvision@{ph}x{pw} {B / t['tv512']:.2f} img/s | parser({name})@{ph}x{pw} {B / t['parser']:.2f} img/s "
                  f"| SPReID w/fg shared (re-ID {name}, Inception-V3* parser) {B / t['full']:.2f} img/s", flush=True)
            rows.append(dict(name=name, tv=B / t["tv"], bb=B / t["bb"], tv512=B / t["tv512"], parser=B / t["parser"], full=B / t["full"],
                             parts=(t["paper_parser"] + t["bb"]) / t["full"]))
            del tv, ours, parser, model
    load1 = os.getloadavg()[0]

    prov = provenance("cpu", preset=f"batch {B}, median of {a.iters}", wall_time_s=round(wall.seconds, 1))
    L = ["# Model throughput (forward, inference mode, CPU)", "",
         f"Batch {B}; re-ID input {rh}x{rw}; parser input {ph}x{pw}; median of {a.iters} timed iterations, "
         "taken round-robin over the models of one backbone (no separate warm-up); "
         f"{a.threads} threads; load average {load0:.2f} at start, {load1:.2f} at end "
         "(other processes shared the cores: numbers are noisy). Written by `bench/bench_models.py`.", "",
         "## Backbones and models, images/s (ratio to the plain torchvision forward of the same backbone, same input size)", "",
         f"| backbone | torchvision @{rh}x{rw} | our backbone @{rh}x{rw} | torchvision @{ph}x{pw} | parser @{ph}x{pw} (this trunk, OS 16) "
         f"| SPReID w/fg, shared (this re-ID backbone + Inception-V3* parser), input {ph}x{pw} | SPReID time vs Inception-V3* parser + our backbone, same rounds |",
         "|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['name']} | {r['tv']:.2f} | {r['bb']:.2f} ({r['bb'] / r['tv']:.2f}x) | {r['tv512']:.2f} | "
                 f"{r['parser']:.2f} ({r['parser'] / r['tv512']:.2f}x) | {r['full']:.2f} ({r['full'] / r['tv']:.2f}x of torchvision @{rh}x{rw}) "
                 f"| {1 / r['parts']:.2f}x |")
    L += ["", "## SPReID pooling head vs the re-ID backbone's forward (budget: at most 3%)", "",
          "Head = semantic pooling of the re-ID map as upsampled to the parser's map size (maps pulled back, one bmm), max over parts, "
          f"global pooling, concatenation; median over rounds of the mean of {max(1, a.head_iters // a.iters)} runs "
          "on the backbone's real output, timed in the same rounds as the backbone.", "",
          "| backbone | re-ID map | parser map | backbone ms | head ms | head / backbone |", "|---|---|---|---|---|---|"]
    for name, fs, rs, t_bb, t_head in head_rows:
        L.append(f"| {name} | {fs[0]}x{fs[1]} | {rs[0]}x{rs[1]} | {1000 * t_bb:.0f} | {1000 * t_head:.1f} | {100 * t_head / t_bb:.2f}% |")
    L += ["", provenance_line(prov, keys=("preset", "commit", "device", "wall_time_s", "time_utc")), ""]
    with atomic_write(a.out, "w") as f: f.write("\n".join(L))
    print("\n".join(L))


if __name__ == "__main__":
    main()
