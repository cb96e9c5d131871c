"""Inputs as the weights expect them (issue 13): each backbone normalises its own [0, 1] input in
the model, 0.5/0.5 for (pretrained) Inception-V3 and ImageNet's statistics for a ResNet, through
training, feature extraction and the exported ONNX graph; SPReID's parser gets the original image
resized once to its own size, flipped together with the re-ID copy."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spreid_nb.backbones import IMAGENET_MEAN, IMAGENET_STD
from spreid_nb.datasets import load_reid
from spreid_nb.transforms import ImageDataset, build_transforms
from spreid_nb.models import extract_features
from spreid_nb.train import StepBatches, config_for, data_roots, load_trained, train, train_dataset

torch.set_num_threads(1)
STATS = {"inception_v3": ((0.5,) * 3, (0.5,) * 3), "resnet18": (IMAGENET_MEAN, IMAGENET_STD)}


class FirstConvInputs:
    "Record the input of every convolution taking 3 channels (a backbone's first), in call order."
    def __enter__(self):
        self.seen = []
        def hook(m, args):
            if isinstance(m, nn.Conv2d) and m.in_channels == 3:
                self.seen.append(args[0].detach().clone())
        self.handle = nn.modules.module.register_module_forward_pre_hook(hook)
        return self
    def __exit__(self, *exc): self.handle.remove()


def norm(x: torch.Tensor, backbone: str) -> torch.Tensor:
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in STATS[backbone])
    return (x - m) / s


def weights_file(backbone: str, d: Path) -> str:
    "A torchvision state dict of `backbone` on disk: `pretrained=` loads it as it would ImageNet's."
    import torchvision
    kw = dict(aux_logits=False, init_weights=False) if backbone == "inception_v3" else {}
    torch.manual_seed(0)
    path = d / f"{backbone}.pth"
    torch.save(getattr(torchvision.models, backbone)(weights=None, **kw).state_dict(), path)
    return str(path)


@pytest.mark.parametrize("backbone", ["inception_v3", "resnet18"])
def test_training_extraction_and_onnx_normalise_per_backbone(backbone, tmp_path):
    h, w = (80, 80) if backbone == "inception_v3" else (64, 32)
    cfg = config_for("smoke", backbone=backbone, pretrained=weights_file(backbone, tmp_path),
                     height=h, width=w, iters=1, batch_size=2, flip=False, threads=1, workers=0)
    with FirstConvInputs() as rec:
        run = train(cfg, tmp_path / "run", progress=False, evaluate=False)
    ds, _ = train_dataset(cfg, data_roots(cfg))
    x = torch.stack([ds[i][0] for i in StepBatches(len(ds), cfg.batch_size, cfg.seed).batch(0)])
    assert 0 <= x.min() and x.max() <= 1                       # the data path does not normalise,
    torch.testing.assert_close(rec.seen[-1], norm(x, backbone))  # the model does, its own way
    # extraction
    model, _ = load_trained(run)
    recs = load_reid("market1501", data_roots(cfg)["market1501"]).query[:3]
    with FirstConvInputs() as rec:
        f = extract_features(model, ImageDataset(recs, build_transforms(h, w)), progress=False)[0]
    xq = torch.stack([_read(r[0], h, w) for r in recs])
    torch.testing.assert_close(rec.seen[-1], norm(xq, backbone))
    # ONNX: the graph normalises inside, so plain [0, 1] pixels give the normalised trunk's features
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    from spreid_nb.cli import export_onnx
    out = tmp_path / "m.onnx"
    export_onnx(run, out, log=lambda m: None, exporter="torchscript")  # faster; test_cli: dynamo
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(["features"], {"images": xq.numpy()})[0]
    with torch.inference_mode():
        trunk = lambda t: nn.Sequential.forward(model.backbone, t).mean((2, 3)).numpy()  # as is
        want = trunk(norm(xq, backbone))
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(f, want, atol=1e-4)
    consts = onnx_vectors(out)                             # the graph holds this backbone's stats
    other = "resnet18" if backbone == "inception_v3" else "inception_v3"
    assert all(any(np.allclose(c, v) for c in consts) for v in STATS[backbone])
    assert not any(np.allclose(c, STATS[other][0]) for c in consts)


def onnx_vectors(path: Path) -> list[np.ndarray]:
    "Every 3-element float constant of an ONNX graph (initializers and Constant nodes), flattened."
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    nodes = [n for n in g.node if n.op_type == "Constant"]
    consts = [a.t for n in nodes for a in n.attribute if a.name == "value"]
    ts = list(g.initializer) + consts
    arrs = [numpy_helper.to_array(t).ravel() for t in ts]
    return [a.astype(np.float64) for a in arrs if a.size == 3 and a.dtype.kind == "f"]


def _read(path, h, w):
    from spreid_nb.transforms import read_image
    return build_transforms(h, w)(read_image(path))


def spreid_run(tmp_path: Path, preset: str, parser_backbone: str, **over):
    "A one-step SPReID run on a saved (untrained) parser: (config, first-conv inputs of the step)."
    from spreid_nb.parser import HumanParser, save_parser
    torch.manual_seed(0)
    save_parser(HumanParser(parser_backbone), tmp_path / "parser.pt")
    cfg = config_for(preset, "spreid", parser_ckpt=str(tmp_path / "parser.pt"),
                     parser_backbone=parser_backbone, iters=1, batch_size=2, workers=0,
                     **{"threads": 1, **over})
    with FirstConvInputs() as rec:
        train(cfg, tmp_path / "run", progress=False, evaluate=False)
    return cfg, rec.seen[-2:]          # the step's re-ID backbone, then its parser


def check_spreid_inputs(cfg, seen, reid_bb: str, parser_bb: str):
    "Own normalisation per network; the parser sees the original resized once, flipped with x."
    import torch.nn.functional as F
    ds, _ = train_dataset(cfg, data_roots(cfg))
    sb = StepBatches(len(ds), cfg.batch_size, cfg.seed)
    x, xp = (torch.stack([ds[i][0][k] for i in sb.batch(0)]) for k in (0, 1))
    if cfg.flip:
        m = sb.flips(0)[:, None, None, None]
        x, xp = torch.where(m, x.flip(-1), x), torch.where(m, xp.flip(-1), xp)
    assert xp.shape[-2:] == tuple(cfg.parser_size) != x.shape[-2:]
    torch.testing.assert_close(seen[0], norm(x, reid_bb))
    torch.testing.assert_close(seen[1], norm(xp, parser_bb))
    resampled = F.interpolate(x, size=tuple(cfg.parser_size), mode="bilinear", align_corners=False)
    assert (seen[1] - norm(resampled, parser_bb)).abs().max() > 0.05   # not x re-sampled


def test_spreid_parser_gets_its_own_copy(tmp_path):
    "ResNet-18 re-ID branch (ImageNet statistics) beside an Inception-V3* parser (0.5/0.5)."
    cfg, seen = spreid_run(tmp_path, "smoke", "inception_v3", parser_size=(80, 80), flip=True,
                           seed=1)
    assert cfg.backbone == "resnet18" and StepBatches(1000, 2, 1).flips(0).any()   # one image flips
    check_spreid_inputs(cfg, seen, "resnet18", "inception_v3")


@pytest.mark.skipif(not os.environ.get("SPREID_HEAVY"), reason="paper sizes, CPU: SPREID_HEAVY=1")
def test_paper_preset_spreid_inputs_heavy(tmp_path):
    "The paper preset's SPReID step: Inception-V3 at 512x170, the parser at 512x512, both 0.5/0.5."
    cfg, seen = spreid_run(tmp_path, "paper", "inception_v3", data="synthetic",
                           synth_preset="smoke",
                           pretrained=weights_file("inception_v3", tmp_path), threads=2)
    sizes = (cfg.height, cfg.width, tuple(cfg.parser_size), cfg.backbone)
    assert sizes == (512, 170, (512, 512), "inception_v3")
    check_spreid_inputs(cfg, seen, "inception_v3", "inception_v3")
