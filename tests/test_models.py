"""Checks of spreid_nb.backbones/parser/pooling/models that are too slow for the notebooks (ResNet-50/152,
Inception-V3 models with two backbones, DataLoader workers, import weight)."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from spreid_nb.backbones import build_backbone
from spreid_nb.models import baseline, build_model, extract_features, spreid
from spreid_nb.parser import HumanParser, load_parser, save_parser


@pytest.mark.parametrize("name", ["resnet50", "resnet152"])
def test_resnet_shapes_and_dense_stride16(name):
    torch.manual_seed(0)
    # float64: randomly initialised deep ResNets reach activations of 1e8, where float32 rounding shows
    b32, b16 = build_backbone(name).eval().double(), build_backbone(name, output_stride=16).eval().double()
    b16.load_state_dict(b32.state_dict())
    x = torch.randn(1, 3, 96, 70, dtype=torch.float64)
    with torch.inference_mode():
        y32, y16 = b32(x), b16(x)
    assert y32.shape == (1, 2048, *b32.feature_size(96, 70))
    assert y16.shape == (1, 2048, *b16.feature_size(96, 70))
    # bottleneck blocks: the dilated network computes the same map densely
    torch.testing.assert_close(y16[..., ::2, ::2], y32, atol=0, rtol=1e-9)


@pytest.mark.parametrize("h,w", [(75, 75), (299, 299), (512, 170), (101, 77)])
def test_inception_feature_size_matches_forward(h, w):
    torch.manual_seed(0)
    for os_ in (32, 16):
        b = build_backbone("inception_v3", output_stride=os_).eval()
        with torch.inference_mode():
            assert b(torch.randn(1, 3, h, w)).shape[-2:] == b.feature_size(h, w)


def test_inception_spreid_exclusive_forward_backward_and_counts():
    torch.manual_seed(0)
    parser = HumanParser()
    kw = dict(parser=parser, num_classes=3, reid_size=(160, 80), parser_size=(96, 96))
    shared, excl = spreid("wofg", shared_backbone=True, **kw), spreid("wofg", shared_backbone=False, **kw)
    n = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert n(excl) - n(shared) == sum(p.numel() for p in build_backbone("inception_v3").parameters())
    logits, emb = excl.train()(torch.randn(2, 3, 96, 96))
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert emb.shape == (2, 2 * 2048)
    assert excl.semantic_backbone.Mixed_7c.branch_pool.conv.weight.grad is not None
    assert excl.backbone.Mixed_7c.branch_pool.conv.weight.grad is not None
    assert not excl.parser.training


def test_paper_parser_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    p = HumanParser(aspp="paper").eval()
    save_parser(p, tmp_path / "p.pt", iters=1)
    q = load_parser(tmp_path / "p.pt", backbone="inception_v3", aspp="paper").eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(q(x), p(x))
    with pytest.raises(ValueError, match="aspp='paper'; expected aspp='authors'"):
        load_parser(tmp_path / "p.pt", aspp="authors")
    m = build_model("spreid_combined", parser_ckpt=tmp_path / "p.pt", parser_backbone="inception_v3",
                    backbone="resnet18", reid_size=(64, 32), parser_size=(96, 96))
    assert m.members[0].parser is m.members[1].parser


class _Set(Dataset):
    def __init__(self):
        self.x = torch.randn(9, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    def __len__(self): return 9
    def __getitem__(self, i): return self.x[i], i, i % 2, f"p{i}.jpg"


def test_extract_features_workers_and_progress():
    torch.manual_seed(0)
    m = baseline("resnet18")
    a = extract_features(m, _Set(), batch_size=4, workers=0, progress=True)
    b = extract_features(m, _Set(), batch_size=4, workers=2, progress=False)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[3] == b[3] == [f"p{i}.jpg" for i in range(9)]


def test_model_modules_import_light():
    code = ("import sys, spreid_nb.backbones, spreid_nb.parser, spreid_nb.pooling, spreid_nb.models; "
            "print(' '.join(sorted(sys.modules)))")
    mods = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())
    heavy = [m for m in ("torchvision", "matplotlib", "pandas", "scipy", "papermill") if m in mods]  # torch itself imports tqdm
    assert not heavy, f"importing the model modules pulled in {heavy}"
