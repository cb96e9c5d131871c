"""CPU throughput of an exported SPReID model: onnxruntime (ours, `spreid export`) beside PyTorch eager (the
reference) on the same inputs, threads and batch, in one run; plus the export's max abs difference.

Models are randomly initialised (speed does not depend on the weights), with batch-norm statistics calibrated on
noise so that features have a trained network's scale (with the default unit statistics a random Inception-V3's
features reach 1e9, where float32 rounding alone exceeds 1e-4), and written as training checkpoints, so that the
export goes through the same `spreid_nb.inference.export_onnx` as `spreid export`.

Run (about 10 minutes on 2 CPU cores; noisy when other processes share the cores):
    .venv/bin/python bench/bench_export.py                       # both configurations below
    .venv/bin/python bench/bench_export.py --configs small --out /tmp/b.md   # smoke
Writes figures/bench_export.md.
"""
import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spreid_nb.cli import export_onnx
from spreid_nb.core import Timer, atomic_write, provenance, provenance_line, set_threads
from spreid_nb.models import spreid
from spreid_nb.parser import HumanParser
from spreid_nb.train import save_checkpoint

CONFIGS = {  # name: (backbone of both branches, re-ID (h, w), parser (h, w), batch, timed repeats)
    "small": ("resnet18", (128, 64), (128, 64), 8, 7),          # the `synthetic` preset's sizes
    "paper": ("inception_v3", (512, 170), (512, 512), 2, 3),   # the paper's SPReID (Section 4.2)
}


def calibrate_bn(module: torch.nn.Module, x: torch.Tensor, steps: int = 2) -> None:
    "Set the BN running statistics from `steps` forward passes on `x`: activations get the scale of a trained network."
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm): m.reset_running_stats(); m.momentum = None  # plain average
    module.train()
    with torch.no_grad():
        for _ in range(steps): module(x)
    module.eval()


def write_checkpoint(path: Path, backbone: str, reid: tuple, parser: tuple) -> torch.nn.Module:
    "A randomly initialised SPReID w/ fg (BN statistics calibrated on noise) saved as a training checkpoint; returns it (eval mode)."
    torch.manual_seed(0)
    hp = HumanParser(backbone)
    calibrate_bn(hp, torch.rand(4, 3, *parser))   # inputs are RGB in [0, 1]
    m = spreid("wfg", backbone=backbone, parser=hp, reid_size=reid, parser_size=parser)
    calibrate_bn(m.backbone, torch.rand(4, 3, *reid))
    m.eval()
    cfg = dict(height=reid[0], width=reid[1], parser_size=list(parser), task="reid", model="spreid_wfg", backbone=backbone)
    save_checkpoint(path, model=m.state_dict(), model_config=json.loads(json.dumps(m.config)), config=cfg, task="reid", step=0)
    return m


def median_times(fns: list, repeats: int) -> list[float]:
    "Median wall time of each function, calls interleaved (a, b, a, b, ...) so that both see the same machine load."
    for fn in fns: fn()  # warm-up
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t_list in zip(fns, ts):
            t = time.perf_counter(); fn(); t_list.append(time.perf_counter() - t)
    return [statistics.median(t) for t in ts]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure (both engines)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "figures" / "bench_export.md"))
    a = ap.parse_args()
    import onnxruntime as ort
    load0 = os.getloadavg()[0]
    rows = []
    with Timer() as wall, tempfile.TemporaryDirectory() as d:
        for name in a.configs:
            backbone, reid, parser, batch, repeats = CONFIGS[name]
            set_threads(max(a.threads))
            ck = Path(d) / f"{name}.pt"
            model = write_checkpoint(ck, backbone, reid, parser)
            with Timer() as t_export:
                ex = export_onnx(ck, Path(d) / f"{name}.onnx", atol=1e-2, log=lambda m: None)   # the diff is reported below
            g = torch.Generator().manual_seed(1)
            x, xp = torch.rand(batch, 3, *reid, generator=g), torch.rand(batch, 3, *parser, generator=g)
            feed = {"images": x.numpy(), "parser_images": xp.numpy()}   # SPReID: the parser's own copy too
            with torch.inference_mode():
                ref = model(x, xp).numpy()
                fp64 = float(np.abs(copy.deepcopy(model).double()(x.double(), xp.double()).numpy() - ref).max())
            for threads in a.threads:
                set_threads(threads)
                so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
                sess = ort.InferenceSession(ex["path"], so, providers=["CPUExecutionProvider"])
                with torch.inference_mode():
                    diff = float(np.abs(sess.run(["features"], feed)[0] - ref).max())
                    t_torch, t_ort = median_times([lambda: model(x, xp), lambda: sess.run(["features"], feed)], repeats)
                rows.append(dict(name=name, backbone=backbone, reid=reid, parser=parser, batch=batch, repeats=repeats,
                                 threads=threads, torch_ips=batch / t_torch, ort_ips=batch / t_ort,
                                 diff=max(diff, ex["max_abs_diff"]), fp64=fp64, scale=float(np.abs(ref).max()),
                                 export_s=t_export.seconds, size_mb=ex["size_mb"], dim=ex["output"][1]))
                r = rows[-1]
                print(f"{name}, {threads} thread(s): PyTorch {r['torch_ips']:.1f} img/s, onnxruntime {r['ort_ips']:.1f} img/s, "
                      f"ratio {r['ort_ips'] / r['torch_ips']:.2f}; max abs diff {r['diff']:.2e} (PyTorch fp32 vs fp64 "
                      f"{r['fp64']:.2e}, features up to {r['scale']:.2f}); export {r['export_s']:.1f} s", flush=True)
    load1 = os.getloadavg()[0]
    prov = provenance("cpu", data="random inputs", wall_time_s=round(wall.seconds, 1))
    lines = ["# ONNX export benchmark", "",
             "`bench/bench_export.py`: SPReID w/ fg (frozen parser + re-ID backbone + pooling head in one graph), randomly",
             "initialised with batch-norm statistics calibrated on noise, exported by `spreid_nb.cli.export_onnx` (dynamo",
             "exporter, dynamic batch axis) and run on the CPU. Ours is onnxruntime on the exported file, the reference is",
             "PyTorch eager in inference mode on the same input with the same number of threads; throughput is the batch",
             "over the median wall time of the repeats after a warm-up, the two engines' calls interleaved so that both",
             "see the same machine load. The ratio is ours / reference (above 1: the ONNX model is faster).", "",
             "| model | re-ID input | parser input | feature dim | batch | threads | PyTorch img/s | onnxruntime img/s | ratio | max abs diff ONNX vs PyTorch | PyTorch fp32 vs fp64 | max abs feature | export s | file MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| SPReID w/ fg, {r['backbone']} (`{r['name']}`) | {r['reid'][0]}x{r['reid'][1]} | {r['parser'][0]}x{r['parser'][1]} | "
                     f"{r['dim']} | {r['batch']} | {r['threads']} | {r['torch_ips']:.2f} | {r['ort_ips']:.2f} | {r['ort_ips'] / r['torch_ips']:.2f} | "
                     f"{r['diff']:.1e} | {r['fp64']:.1e} | {r['scale']:.2f} | {r['export_s']:.0f} | {r['size_mb']:.0f} |")
    lines += ["", f"Machine load average {load0:.2f} at the start and {load1:.2f} at the end, on {os.cpu_count()} cores: other work on",
              "the same cores slows both engines down and makes these single-run numbers noisy (PyTorch's OpenMP threads",
              "suffer most when the cores are oversubscribed); the ratio is the more stable figure. The ONNX difference is",
              "the larger of the export's own check (batches of 5 and 1, seeded noise) and the benchmark batch; \"PyTorch",
              "fp32 vs fp64\" is the same model run in float64 against float32 on the benchmark batch: float32's own",
              "rounding error for these weights, the floor any float32 engine can reach.", "", provenance_line(prov), ""]
    with atomic_write(a.out, "w") as f: f.write("\n".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
