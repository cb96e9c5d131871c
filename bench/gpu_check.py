"""One prepared GPU check: the paper's models at the paper's sizes, our loop beside a plain
torchvision loop, the data loader, torchrun with NCCL, evaluation and re-ranking on CUDA, and the
time to reproduce Tables 1-6.

Run:
    python bench/gpu_check.py           # one GPU, about 8 minutes: writes figures/bench_gpu.md
    python bench/gpu_check.py --smoke   # CPU, the same code paths at tiny sizes, < 2 minutes, gloo;
                                        # writes to a temporary folder (or --out)

Every part is guarded: a failure is written into the report and the next part runs. The report is
rewritten after each part, so a run stopped by its timeout keeps what it measured. `--budget`
(seconds) bounds the whole run; a part that would not fit is reported as skipped.

Sizes, iterations and batches come from the library (`spreid_nb.plan.SCALES`, `Plan`,
`train.config_for`): the `paper` preset for the GPU run, the `smoke` preset for --smoke. The
synthetic benchmark is drawn at the paper's resolution (re-ID images at the SPReID input size, LIP
images at the parser's).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_train_loop import ours as ours_loop, plain as plain_loop  # noqa: E402

from spreid_nb.core import (
    atomic_write,
    device_name,
    git_commit,
    seed_everything,
    set_threads,
)  # noqa: E402
from spreid_nb.plan import SCALES, Plan  # noqa: E402
from spreid_nb import train as T  # noqa: E402


@dataclasses.dataclass
class Scale:
    "What differs between the GPU run and --smoke (sizes and models: the library's preset)."

    preset: str
    device: str
    backend: str
    batches: tuple
    steps: int
    warm: int
    budget: float
    market: dict
    lip: dict
    eval_sizes: dict
    loader_batches: int
    e2e_steps: int
    compile_backend: str
    variants: tuple  # (variants at the first batch, variants at the larger batch)
    rounds: int  # rounds of part 2


GPU = Scale(
    "paper",
    "cuda",
    "nccl",
    (15, 64),
    steps=10,
    warm=3,
    budget=420,
    market=dict(n_train_ids=30, n_test_ids=6, imgs_per_id=8, n_distractors=4, n_junk=2),
    lip=dict(n_train=64, n_val=4),
    eval_sizes=dict(num_ids=751, num_query=3368, num_gallery=15913, num_distractors=2793, dim=2048),
    loader_batches=40,
    e2e_steps=30,
    compile_backend="inductor",
    variants=(("fp32", "fp32+CL", "bf16", "bf16+CL"), ("fp32", "bf16+CL")),
    rounds=2,
)
SMOKE = Scale(
    "smoke",
    "cpu",
    "gloo",
    (4, 8),
    steps=2,
    warm=1,
    budget=100,
    market=dict(n_train_ids=6, n_test_ids=3, imgs_per_id=4, n_distractors=2, n_junk=1),
    lip=dict(n_train=8, n_val=2),
    eval_sizes=dict(num_ids=20, num_query=40, num_gallery=200, num_distractors=60, dim=32),
    loader_batches=4,
    e2e_steps=4,
    compile_backend="eager",
    variants=(("fp32", "bf16+CL"), ("bf16+CL",)),
    rounds=1,
)
VARIANTS = {
    "fp32": ("none", False),
    "fp32+CL": ("none", True),
    "bf16": ("bf16", False),
    "bf16+CL": ("bf16", True),
}


class Report:
    "Markdown sections, rewritten to `path` after every part; `part` guards and times one part."

    def __init__(self, path: Path, budget: float):
        self.path, self.budget, self.t0, self.sections = path, budget, time.perf_counter(), []

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def add(self, title: str, lines: list[str]):
        self.sections.append((title, lines))
        self.write()

    def write(self):
        text = "\n\n".join(
            f"## {t}\n\n" + "\n".join(l) if t else "\n".join(l) for t, l in self.sections
        )
        with atomic_write(self.path, "w") as f:
            f.write(text + "\n")

    def part(self, title: str, fn, needs: float):
        "Run `fn() -> lines` unless under `needs` s are left; a failure is reported, not raised."
        if self.left() < needs:
            return self.add(
                title,
                [
                    f"Skipped: {self.left():.0f} s of the budget left, the part needs about"
                    f" {needs:.0f} s."
                ],
            )
        t = time.perf_counter()
        try:
            lines = fn()
        except Exception as e:
            tb = traceback.format_exc().strip().splitlines()
            lines = [
                (
                    f"**Failed**: `{type(e).__name__}:"
                    f" {str(e).splitlines()[0][:300] if str(e) else ''}`"
                ),
                "",
                "```",
                *tb[-6:],
                "```",
            ]
        print(
            f"[{time.perf_counter() - self.t0:6.1f} s] {title}: {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        self.add(title, [*lines, "", f"_Part time {time.perf_counter() - t:.1f} s._"])


# ----- data and configs
def draw_data(sc: Scale, root: Path) -> dict:
    "The synthetic benchmark at paper resolution: re-ID at the SPReID size, LIP at the parser's."
    from spreid_nb.synth import write_lip_layout, write_market_layout

    s = SCALES[sc.preset]
    write_market_layout(root / "market", size=tuple(s["spreid"]), write_parsing=False, **sc.market)
    write_lip_layout(root / "lip", size=tuple(s["parser"]), **sc.lip)
    return {"market1501": root / "market", "lip": root / "lip"}


def local(cfg, sc: Scale, roots: dict, tmp: Path, **kw):
    "A library config made runnable here: random init, this device, the drawn data."
    over = dict(
        pretrained=None,
        device=sc.device,
        threads=None if sc.device == "cuda" else 1,
        workers=min(os.cpu_count() or 2, 16) if sc.device == "cuda" else 2,
        flip=False,
    )
    if cfg.task == "parser":
        over.update(data="lip", data_root=str(roots["lip"]))
    else:
        over.update(data="market1501", target="market1501", data_root=str(roots["market1501"]))
    if cfg.model.startswith("spreid"):
        over["parser_ckpt"] = str(parser_file(cfg.parser_backbone, tmp))
    if cfg.init_from:
        over["init_from"] = None
    return dataclasses.replace(cfg, **{**over, **kw})


def parser_file(backbone: str, tmp: Path) -> Path:
    "A randomly initialised parser saved where SPReID configs load it (it is frozen there anyway)."
    from spreid_nb.parser import HumanParser, save_parser

    p = tmp / f"parser-{backbone}.pt"
    if not p.exists():
        save_parser(HumanParser(backbone), p)
    return p


def headline(sc: Scale) -> dict:
    "The issue's four models at the preset's sizes: baseline (L), SPReID w/fg, parser, fine-tuning."
    plan, runs = Plan(sc.preset, Path("runs")), collections.defaultdict(lambda: Path("runs/x"))
    base = plan.baseline("L")
    return {
        f"Baseline {plan.scale['main']}": base[1],
        "SPReID w/fg (frozen parser)": plan.spreid("wfg", False, runs)[1],
        "Parser": plan.parser()[1],
        "Fine-tuning (baseline)": plan.finetuned(base, runs, "market1501")[1],
    }


def describe(cfg) -> str:
    size = f"{cfg.height}x{cfg.width}"
    if cfg.model.startswith("spreid"):
        size += f", parser {cfg.parser_size[0]}x{cfg.parser_size[1]}"
    return f"{cfg.model} {cfg.parser_backbone if cfg.task == 'parser' else cfg.backbone} @{size}"


# ----- step throughput
def one_batch(cfg, roots: dict, batch: int) -> tuple:
    "A training batch of the config's data (the run's own transforms): inputs `[x(, xp)]`, labels, classes."
    ds, n = T.train_dataset(cfg, roots)
    batch_ = torch.utils.data.default_collate([ds[i % len(ds)] for i in range(batch)])
    xs, y = T.batch_inputs(cfg, batch_, torch.device("cpu"))
    return xs, y, n


def step_rate(
    cfg,
    roots: dict,
    batch: int,
    sc: Scale,
    amp: str = "none",
    cl: bool = False,
    compile_model: str | None = None,
) -> dict:
    "img/s of our training step (`train`'s model, loss, groups, clipping, SGD), batch on device."
    dev = torch.device(sc.device)
    seed_everything(0)
    xs, y, n = one_batch(cfg, roots, batch)
    model = T.build_run_model(cfg, n).to(dev)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        T._param_groups(model, cfg),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
        weight_decay=cfg.weight_decay,
    )
    net = torch.compile(model, backend=compile_model) if compile_model else model
    xs, y = [x.to(dev) for x in xs], y.to(dev)
    if cl:
        xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():
        net.train()
        T._set_bn(model, cfg.bn)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            loss, _ = T._loss(cfg, net(*xs), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        return loss

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t = time.perf_counter()
    for _ in range(sc.warm):
        step()
    sync()
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(sc.steps):
        loss = step()
    sync()
    dt = (time.perf_counter() - t) / sc.steps
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {float(loss)}")
    del model, opt, net
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return dict(img_s=batch / dt, ms=1000 * dt, warm_s=warm_s, peak_gb=peak)


def part_matrix(sc, roots, tmp, rates: dict) -> list[str]:
    L = [
        (
            "Our training step (the model `build_run_model` builds, `train`'s loss, parameter"
            " groups, clipping and SGD) on one batch of the drawn data held on the device; mean of"
            f" {sc.steps} steps after {sc.warm} warm-up steps. img/s; CL = channels_last; bf16 ="
            " bfloat16 autocast. Peak = GPU memory of the last variant measured."
        ),
        "",
        "| model | batch | " + " | ".join(VARIANTS) + " | peak GiB |",
        "|---|---|" + "---|" * (len(VARIANTS) + 1),
    ]
    import torchvision

    for name, cfg0 in headline(sc).items():
        cfg = local(cfg0, sc, roots, tmp)
        for b in sc.batches:
            cells, peak = [], float("nan")
            for v, (amp, cl) in VARIANTS.items():
                if v not in sc.variants[b != sc.batches[0]]:
                    cells.append("–")
                    continue
                try:
                    r = step_rate(cfg, roots, b, sc, amp, cl)
                    peak = r["peak_gb"]
                    rates[(sig(cfg), b, v)] = r["img_s"]
                    cells.append(f"{r['img_s']:.1f}")
                except (
                    Exception
                ) as e:  # e.g. out of memory at the larger batch: report it, free the cache, go on
                    cells.append(f"failed ({type(e).__name__}: {str(e)[:80]})")
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
            L.append(
                f"| {name}: {describe(cfg)} | {b} | "
                + " | ".join(cells)
                + f" | {peak:.1f} |".replace("nan", "–")
            )
    cfg = local(headline(sc)[f"Baseline {SCALES[sc.preset]['main']}"], sc, roots, tmp)
    tv = TorchvisionBaseline(cfg.backbone)
    cells = []
    for v in ("fp32", "bf16+CL"):
        r = tv.rate(cfg, roots, sc.batches[0], sc, *VARIANTS[v])
        cells.append(f"{v} {r['img_s']:.1f}")
        ours = rates.get((sig(cfg), sc.batches[0], v))
        if ours:
            cells[-1] += f" (ours/torchvision {ours / r['img_s']:.3f})"
    L += [
        "",
        f"Plain torchvision `{cfg.backbone}` (its own head, same step) at {cfg.height}x{cfg.width},"
        f" batch {sc.batches[0]}: "
        + "; ".join(cells)
        + f". torchvision {torchvision.__version__}.",
    ]
    return L


class TorchvisionBaseline:
    "torchvision's classifier of a backbone, stepped like ours (for the model-level comparison)."

    def __init__(self, backbone: str):
        self.backbone = backbone

    def make(self, n: int) -> nn.Module:
        import torchvision

        kw = dict(aux_logits=False, init_weights=False) if self.backbone == "inception_v3" else {}
        return getattr(torchvision.models, self.backbone)(weights=None, num_classes=n, **kw)

    def rate(self, cfg, roots, batch, sc, amp, cl) -> dict:
        orig = T.build_run_model
        T.build_run_model = lambda c, n: self.make(n)
        try:
            return step_rate(dataclasses.replace(cfg, model="baseline"), roots, batch, sc, amp, cl)
        finally:
            T.build_run_model = orig


def sig(cfg) -> tuple:
    "What sets a run's step time: task, model, backbones, input and parser sizes, shared backbone."
    return (
        cfg.task,
        cfg.model,
        cfg.backbone if cfg.task == "reid" else cfg.parser_backbone,
        cfg.height,
        cfg.width,
        tuple(cfg.parser_size) if cfg.model.startswith("spreid") else None,
        cfg.shared_backbone if cfg.model.startswith("spreid") else None,
    )


# ----- our loop vs plain
def part_e2e(sc, roots, tmp, rates: dict) -> list[str]:
    "`train()` beside a plain torchvision loop: same batch, data, DataLoader workers, precision."
    base = headline(sc)[f"Baseline {SCALES[sc.preset]['main']}"]
    tv = TorchvisionBaseline(base.backbone)
    L = [
        (
            "`train()` (metrics, checkpoint at the end, no evaluation) beside a plain loop over"
            f" torchvision's `{base.backbone}` (`DataLoader(shuffle=True, pin_memory)`, forward,"
            " cross-entropy, backward, clip, SGD), both reading the drawn images from disk with"
            f" the same workers; {sc.e2e_steps} steps, the second half timed (ours from its own"
            " metrics rows, synchronised at logged steps; plain with a CUDA sync). Rounds in"
            " alternating order; the ratio is the median over rounds. Goal: ours >= 0.95x plain."
        ),
        "",
        "| setting | batch | ours img/s | plain img/s | ours/plain speed (median) |",
        "|---|---|---|---|---|",
    ]
    for v in ("bf16+CL", "fp32"):
        for b in sc.batches[:1] if v == "fp32" or sc.rounds == 1 else sc.batches:
            amp, cl = VARIANTS[v]
            cfg = local(
                base,
                sc,
                roots,
                tmp,
                iters=sc.e2e_steps,
                log_every=sc.e2e_steps // 2,
                ckpt_every=sc.e2e_steps,
                batch_size=b,
                amp=amp,
                channels_last=cl,
            )
            t = {"ours": [], "plain": []}
            for r in range(sc.rounds):
                for k in (("ours", "plain") if r == 0 else ("plain", "ours")):
                    t[k].append(
                        ours_loop(cfg, sc.e2e_steps)
                        if k == "ours"
                        else plain_loop(cfg, sc.e2e_steps, tv.make)
                    )
            ratio = statistics.median(p / o for o, p in zip(t["ours"], t["plain"]))
            o, p = (b / statistics.median(t[k]) for k in ("ours", "plain"))
            rates[("e2e", b, v)] = o
            L.append(
                f"| {v} | {b} | {o:.1f} | {p:.1f} | **{ratio:.3f}**"
                f" {'ok' if ratio >= 0.95 else 'BELOW 0.95'} |"
            )
    return L


# ----- the data loader
class _FileBytes(torch.utils.data.Dataset):
    "The encoded JPEG bytes of each record (decoded later, on the device)."

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return Path(self.paths[i]).read_bytes()  # bytes: no shared-memory handles


def _loader_rate(
    ds, batch, n_batches, workers, collate=None, on_batch=lambda b: b, sync=lambda: None
) -> float:
    sampler = torch.utils.data.RandomSampler(
        ds,
        replacement=True,
        num_samples=batch * (n_batches + 2),
        generator=torch.Generator().manual_seed(0),
    )
    dl = torch.utils.data.DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=False,
        timeout=120 if workers else 0,
    )
    t0 = None
    for i, b in enumerate(dl):
        on_batch(b)
        if i == 1:
            sync()
            t0 = time.perf_counter()  # the first two batches start the workers
    sync()
    return batch * n_batches / (time.perf_counter() - t0)


def gpu_decode(datas: list, size: tuple, dev: torch.device) -> torch.Tensor:
    "Decode JPEG bytes on `dev` (nvJPEG on CUDA), resize to `size`: (B, 3, H, W) RGB in [0, 1]."
    import torchvision.io
    import torch.nn.functional as F

    datas = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in datas]
    imgs = torchvision.io.decode_jpeg(datas, device=dev)  # the drawn JPEGs are RGB
    x = torch.cat([
        F.interpolate(im[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        for im in imgs
    ])
    return x / 255  # the models normalise their own [0, 1] input (backbones.BACKBONES)


def part_loader(sc, roots, tmp, rates: dict) -> list[str]:
    cfg = local(headline(sc)["SPReID w/fg (frozen parser)"], sc, roots, tmp)
    ds, _ = T.train_dataset(cfg, roots)
    dev, b = torch.device(sc.device), sc.batches[0]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    cpu = _loader_rate(ds, b, sc.loader_batches, cfg.workers)
    train_rate = max(
        (v for k, v in rates.items() if k[0] == sig(cfg) and k[1] == b), default=float("nan")
    )
    size = (cfg.height, cfg.width)
    paths = [r[0] for r in ds.records]
    dec = _loader_rate(
        _FileBytes(paths),
        b,
        sc.loader_batches,
        min(cfg.workers, 4),
        collate=list,
        on_batch=lambda d: gpu_decode(d, size, dev),
        sync=sync,
    )
    x_gpu = gpu_decode([_FileBytes(paths)[0]], size, dev).cpu()
    x0 = ds[0][0]
    diff = float((x_gpu[0] - (x0[0] if isinstance(x0, (list, tuple)) else x0)).abs().mean())
    feeds = cpu >= train_rate
    return [
        f"`DataLoader` over the run's own `Dataset` (PIL decode, resize to {size[0]}x{size[1]},"
        f" normalise) with {cfg.workers} workers ({os.cpu_count()} CPU cores), batch {b}:"
        f" **{cpu:.0f} img/s**, beside SPReID w/fg's fastest training step at batch {b}:"
        f" **{train_rate:.0f} img/s** -> the loader "
        + ("keeps up." if feeds else "**cannot feed the GPU**: decode on the device instead."),
        "",
        (
            f"Decoding on the device instead (`torchvision.io.decode_jpeg(device={dev.type!r})` on"
            f" the files' bytes read by {min(cfg.workers, 4)} workers, bilinear antialiased resize"
            f" and normalisation on the device): **{dec:.0f} img/s**; mean absolute difference from"
            f" the PIL pipeline's tensor {diff:.4f} (different JPEG decoders and resize kernels)."
        ),
    ]


# ----- torchrun, one process
def ddp_child(cfg_json: str, result: str):
    "Under torchrun: initialise through `setup_process`, train, and record what the DDP path did."
    import torch.distributed as dist

    d = json.loads(Path(cfg_json).read_text())
    cfg = T.TrainConfig(
        **{k: tuple(v) if k == "parser_size" else v for k, v in d.pop("cfg").items()}
    )
    rank, world, dev = T.setup_process(cfg)
    info = dict(
        under_torchrun=T.under_torchrun(),
        initialised=dist.is_initialized(),
        world=world,
        backend=dist.get_backend() if dist.is_initialized() else None,
        device=str(dev),
    )
    t = time.perf_counter()
    T.train(cfg, d["out"], progress=False, evaluate=False)
    info.update(seconds=time.perf_counter() - t, torn_down=not dist.is_initialized())
    Path(result).write_text(json.dumps(info))


def part_torchrun(sc, roots, tmp, rates: dict) -> list[str]:
    base = headline(sc)[f"Baseline {SCALES[sc.preset]['main']}"]
    steps = sc.e2e_steps // 2
    cfg = local(
        base,
        sc,
        roots,
        tmp,
        iters=steps,
        log_every=1,
        ckpt_every=steps,
        amp="bf16" if sc.device == "cuda" else "none",
    )
    spec, res, out = tmp / "ddp.json", tmp / "ddp-result.json", tmp / "ddp-run"
    spec.write_text(json.dumps(dict(cfg=dataclasses.asdict(cfg), out=str(out))))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "1",
        str(Path(__file__).resolve()),
        "--ddp-child",
        str(spec),
        str(res),
    ]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"torchrun exited {r.returncode}: {r.stderr[-1500:]}")
    info = json.loads(res.read_text())
    import csv

    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    want = dict(under_torchrun=True, initialised=True, world=1, backend=sc.backend, torn_down=True)
    ok = all(info.get(k) == v for k, v in want.items()) and len(rows) == steps
    rate = statistics.median(float(r["img_per_s"]) for r in rows[len(rows) // 2 :])
    return [
        f"`torchrun --standalone --nproc_per_node 1 ... train()` ({describe(cfg)}, batch"
        f" {cfg.batch_size}, {steps} steps, {cfg.amp}): backend **{info['backend']}**, world"
        f" {info['world']}, process group set up by `setup_process` and torn down by `train`'s DDP"
        f" path: **{'ok' if ok else 'NOT OK'}** ({json.dumps(info)}). Losses"
        f" {[round(float(r['loss']), 3) for r in rows]}; median img/s of the second half"
        f" {rate:.1f}; the whole command took {wall:.1f} s (process start, imports, model build)."
    ]


# ----- evaluation on CUDA
def part_eval(sc, roots, tmp, rates: dict) -> list[str]:
    from spreid_nb.metrics import compute_distmat, evaluate_rank, synthetic_reid_features
    from spreid_nb.rerank import re_ranking, re_ranking_scalable

    e, dev = dict(sc.eval_sizes), torch.device(sc.device)
    dim = e.pop("dim")
    qf, gf, qp, gp, qc, gc = synthetic_reid_features(dim=dim, **e)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def timed(fn):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        return out, time.perf_counter() - t

    def scores(d):
        cmc, mAP = evaluate_rank(d, qp, gp, qc, gc, max_rank=50)[:2]
        return np.asarray(cmc), float(mAP)

    def dists(where):
        return tuple(compute_distmat(a, b, device=where) for a, b in ((qf, gf), (qf, qf), (gf, gf)))

    (dc, tdc), (dg, tdg) = timed(lambda: dists("cpu")), timed(lambda: dists(dev))
    (sc_c, tec), (sc_g, teg) = timed(lambda: scores(dc[0])), timed(lambda: scores(dg[0]))
    rr_c, trc = timed(lambda: re_ranking(*dc))
    rr_g, trg = timed(lambda: re_ranking(*dg))
    rr_s, trs = timed(lambda: re_ranking_scalable(qf, gf, device=dev))
    rel = float(np.abs(dc[0] - dg[0]).max() / np.abs(dc[0]).max())
    m = {k: scores(v) for k, v in (("cpu", rr_c), ("dev", rr_g), ("scal", rr_s))}

    def same(a, b):
        return float(max(np.abs(a[0] - b[0]).max(), abs(a[1] - b[1])))

    ok = lambda v: "ok" if v <= 1e-5 else "**DIFFERS**"
    d_rr, d_sc = float(np.abs(rr_c - rr_g).max()), float(np.abs(rr_c - rr_s).max())
    return [
        (
            f"Market-1501-sized features (`synthetic_reid_features`: {e['num_query']:,} queries x"
            f" {e['num_gallery']:,} gallery, {dim}-D, seed 0). CPU: {torch.get_num_threads()}"
            " threads."
        ),
        "",
        "| step | CPU s | " + dev.type + " s | CPU / " + dev.type + " | equal? |",
        "|---|---|---|---|---|",
        (
            f"| 3 distance matrices (`compute_distmat`, q-g, q-q, g-g) | {tdc:.2f} | {tdg:.2f} |"
            f" {tdc / tdg:.1f}x | max relative difference {rel:.1e} {ok(rel)} |"
        ),
        (
            f"| `evaluate_rank` on those distances (CPU code both times) | {tec:.2f} | {teg:.2f} |"
            f" | CMC and mAP differ by {same(sc_c, sc_g):.1e} {ok(same(sc_c, sc_g))} (mAP"
            f" {100 * sc_c[1]:.2f}) |"
        ),
        (
            f"| exact `re_ranking` of those distances | {trc:.2f} | {trg:.2f} | | max abs"
            f" difference {d_rr:.1e} {ok(d_rr)}; metrics differ by {same(m['cpu'], m['dev']):.1e} |"
        ),
        (
            f"| distances + exact re-ranking, CPU, vs `re_ranking_scalable(device={dev.type!r})`"
            f" from features | {tdc + trc:.2f} | {trs:.2f} | {(tdc + trc) / trs:.1f}x | max abs"
            f" difference {d_sc:.1e} {ok(d_sc)}; metrics differ by {same(m['cpu'], m['scal']):.1e}"
            f" (re-ranked mAP {100 * m['cpu'][1]:.2f}) |"
        ),
    ]


# ----- torch.compile
def part_compile(sc, roots, tmp, rates: dict) -> list[str]:
    cfg = local(headline(sc)[f"Baseline {SCALES[sc.preset]['main']}"], sc, roots, tmp)
    b, v = sc.batches[0], "bf16+CL"
    r = step_rate(cfg, roots, b, sc, *VARIANTS[v], compile_model=(sc.compile_backend))
    eager = rates.get((sig(cfg), b, v))
    return [
        f"`torch.compile(model, backend={sc.compile_backend!r})` of {describe(cfg)}, batch {b},"
        f" {v}: **{r['img_s']:.1f} img/s** vs {eager:.1f} eager ({r['img_s'] / eager:.2f}x); the"
        f" {sc.warm} warm-up steps, compilation included, took {r['warm_s']:.1f} s."
    ]


# ----- time to reproduce
def paper_runs(preset: str) -> tuple[dict, dict, dict]:
    "The runs of Tables 1-6 as the reproduction notebooks ask `Plan` for them."
    plan, runs = Plan(preset, Path("runs")), collections.defaultdict(lambda: Path("runs/x"))
    s = plan.scale
    targets = ["market1501", "cuhk03", "dukemtmcreid"] if preset == "paper" else ["market1501"]
    cfgs, deps, tables = {}, {}, collections.defaultdict(list)

    def add(table, kc, after=()):
        cfgs[kc[0]] = kc[1]
        deps.setdefault(kc[0], set()).update(after)
        if kc[0] not in tables[table]:
            tables[table].append(kc[0])
        return kc

    def ft(table, kc):
        for t in targets:
            add(table, plan.finetuned(kc, runs, t), [kc[0]])

    parser = add(1, plan.parser())
    for size in ("S", "M", "L"):
        add(2, plan.baseline(size))
    ft(2, plan.baseline("L"))
    for bb in s["backbones"]:
        ft(3, add(3, plan.baseline("L", bb)))
    add(4, parser)
    add(4, plan.baseline("L"))
    for v in ("wfg", "wofg"):
        add(4, plan.spreid(v, False, runs), [parser[0]])
    add(5, parser)
    for shared in (False, True):
        ft(5, add(5, plan.spreid("wfg", shared, runs), [parser[0]]))
    add(6, parser)
    for kc in (plan.baseline("L"), plan.baseline("L", s["star"])):
        ft(6, add(6, kc))
    for v in ("wfg", "wofg"):
        ft(6, add(6, plan.spreid(v, False, runs), [parser[0]]))
    return cfgs, deps, dict(tables)


def makespan(secs: dict, deps: dict, gpus: int) -> float:
    "Length of a list schedule of the runs on `gpus` GPUs, one run per GPU, each after its inputs."
    succ = collections.defaultdict(list)
    for k, ds in deps.items():
        for d in ds:
            succ[d].append(k)
    tail = {}

    def tail_of(k):  # the run plus its longest chain of dependants
        if k not in tail:
            tail[k] = secs[k] + max((tail_of(s) for s in succ[k]), default=0.0)
        return tail[k]

    free, end = [0.0] * gpus, {}
    for k in sorted(secs, key=tail_of, reverse=True):
        g = heapq.heappop(free)
        end[k] = max([g] + [end[d] for d in deps[k]]) + secs[k]
        heapq.heappush(free, end[k])
    return max(end.values())


def _h(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else (f"{s / 60:.1f} min" if s >= 60 else f"{s:.1f} s")


def part_ttr(sc, roots, tmp, rates: dict) -> list[str]:
    cfgs, deps, tables = paper_runs(sc.preset)
    variants = ("fp32", "bf16+CL")
    secs = {v: {} for v in variants}
    L = [
        (
            "Every run that Tables 1-6 need, as `Plan` and `config_for` define them for the"
            f" `{sc.preset}` preset (iterations, input size and batch from the library), timed at"
            " the step rate measured here for its model and size (our training step, batch on the"
            " device: the loader of part 3 must keep up; evaluation and checkpoints not counted)."
            " One run per GPU; runs shared between tables are trained once."
        ),
        "",
        "| run | tables | iterations | input | batch | "
        + " | ".join(f"{v} img/s | {v} time" for v in variants)
        + " |",
        "|---|---|---|---|---|" + "---|---|" * len(variants),
    ]
    for key, cfg0 in cfgs.items():
        cfg = local(cfg0, sc, roots, tmp)
        cells = []
        for v in variants:
            k = (sig(cfg), cfg.batch_size, v)
            if k not in rates:
                rates[k] = step_rate(cfg, roots, cfg.batch_size, sc, *VARIANTS[v])["img_s"]
            secs[v][key] = cfg.iters * cfg.batch_size / rates[k]
            cells += [f"{rates[k]:.1f}", _h(secs[v][key])]
        in_t = ", ".join(str(t) for t, ks in sorted(tables.items()) if key in ks)
        L.append(
            f"| {key} | {in_t} | {cfg.iters:,} | {describe(cfg).split('@')[1]} |"
            f" {cfg.batch_size} | "
            + " | ".join(cells)
            + " |"
        )
    L += [
        "",
        "| what | runs | " + " | ".join(f"{v}, 1 GPU | {v}, 8 GPUs" for v in variants) + " |",
        "|---|---|" + "---|---|" * len(variants),
    ]
    rows = [(f"Table {t}", ks) for t, ks in sorted(tables.items())] + [
        ("**whole paper**", list(cfgs))
    ]
    for name, ks in rows:
        cells = []
        for v in variants:
            s = {k: secs[v][k] for k in ks}
            d = {k: deps[k] & set(ks) for k in ks}
            cells += [_h(sum(s.values())), _h(makespan(s, d, 8))]
        L.append(f"| {name} | {len(ks)} | " + " | ".join(cells) + " |")
    L += [
        "",
        (
            "8 GPUs: the runs spread over eight single-GPU processes, longest dependency chain"
            " first (fine-tuning after its phase-1 run, SPReID after the parser); multi-GPU data"
            " parallelism within a run is not assumed."
        ),
    ]
    return L


# ----- main
def header(sc: Scale, smoke: bool, budget: float) -> list[str]:
    dev = torch.device(sc.device)
    cuda = torch.version.cuda or "none"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return [
        "# GPU check" + (" (smoke run on CPU: tiny sizes, no GPU measured)" if smoke else ""),
        "",
        f"Device: **{device_name(dev)}**; torch {torch.__version__}, CUDA {cuda}, cuDNN {cudnn};"
        f" {os.cpu_count()} CPU cores; Python {platform.python_version()}; commit {git_commit()};"
        f" {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}. Preset `{sc.preset}`; budget"
        f" {budget:.0f} s. Written by `bench/gpu_check.py`"
        + (" --smoke." if smoke else "."),
    ]


PARTS = [
    ("1. Training throughput of the paper's models", part_matrix, 90),
    ("2. Our `train()` beside a plain torchvision loop", part_e2e, 60),
    ("3. The data loader alone", part_loader, 20),
    ("4. `torchrun --nproc_per_node 1`", part_torchrun, 40),
    ("5. Time to reproduce Tables 1-6", part_ttr, 60),
    ("6. Market-size evaluation and re-ranking", part_eval, 75),
    ("7. `torch.compile`", part_compile, 150),
]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="CPU, tiny sizes, gloo: the same code paths in < 2 minutes",
    )
    ap.add_argument(
        "--out",
        default=None,
        help="report file (default: figures/bench_gpu.md; --smoke: a temp folder)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for the whole run (default 420; smoke 100)",
    )
    ap.add_argument("--ddp-child", nargs=2, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.ddp_child:
        return ddp_child(*a.ddp_child)
    sc = SMOKE if a.smoke else GPU
    if not a.smoke and not torch.cuda.is_available():
        ap.error("no CUDA device here: run with --smoke on a CPU")
    if a.smoke:
        set_threads(
            1
        )  # one thread: no OpenMP spinning against the other jobs of a shared CI machine
    out = (
        Path(a.out)
        if a.out
        else (
            Path(tempfile.mkdtemp(prefix="gpu_check-")) / "bench_gpu.md"
            if a.smoke
            else HERE.parent / "figures" / "bench_gpu.md"
        )
    )
    budget = a.budget or sc.budget
    rep = Report(out, budget)
    rep.add("", header(sc, a.smoke, budget))
    rates: dict = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check-data-") as d:
        t = time.perf_counter()
        roots = draw_data(sc, Path(d))
        s = SCALES[sc.preset]
        rep.sections[0][1].append(
            f"\nSynthetic benchmark drawn at {s['spreid'][0]}x{s['spreid'][1]} (re-ID) and "
            f"{s['parser'][0]}x{s['parser'][1]} (LIP) in {time.perf_counter() - t:.1f} s."
        )
        for title, fn, needs in PARTS:
            rep.part(title, lambda: fn(sc, roots, Path(d), rates), needs * (0.05 if a.smoke else 1))
    rep.add("", [f"Total {time.perf_counter() - rep.t0:.1f} s."])
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
