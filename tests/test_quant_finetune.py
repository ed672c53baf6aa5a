"""`labspin finetune` on a few hundred images: fake-quantized weights on the levels, resumable,
seeded, its checkpoint evaluated like any other; bad inputs one line, exit 2."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from labspin.cli import main as cli_main
from labspin.quant.data import load_cifar10
from labspin.quant.evaluate import as_levels
from labspin.quant.finetune import FakeQuant, unfold
from labspin.quant.model import fold_bn, load_model, resnet18_cifar
from labspin.quant.observers import make_observer
from test_quant_calibrate import TILTED
from test_quant_evaluate import tiny_cnn


def test_unfold_round_trips_through_fold():
    torch.manual_seed(0)
    m = resnet18_cifar().eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    folded = fold_bn(m)
    again = resnet18_cifar().eval()
    again.load_state_dict(unfold(m, folded))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fold_bn(again)(x), folded(x), atol=1e-4)


def test_fake_quant_is_on_the_levels_with_straight_through_gradient():
    lv = as_levels(TILTED)
    fq = FakeQuant(lv, make_observer("minmax", "channel"), noise=False).eval()
    w = (torch.randn(8, 27) * 0.1).requires_grad_(True)
    q = fq(w)
    lq = fq.lq
    grid = lq.s[:, None, None] * (lv.values[None, None, :] - lq.z[:, None, None])
    assert (q.detach()[..., None] - grid).abs().min(-1).values.max() < 1e-6
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    fq.train()
    fq.noise, fq.generator = True, torch.Generator().manual_seed(0)
    assert not torch.equal(fq(w).detach(), q.detach())          # CTC draw while training


@pytest.fixture(scope="module")
def ft_files(tmp_path_factory, shared_dir):
    d = tmp_path_factory.mktemp("ft")
    train = load_cifar10(shared_dir / "data/cifar10", "train").subset(192)
    np.savez(d / "train.npz", x=train.x.numpy(), y=train.y.numpy())
    test = load_cifar10(shared_dir / "data/cifar10", "test").subset(16)
    np.savez(d / "test.npz", x=test.x.numpy(), y=test.y.numpy())
    TILTED.save_json(d / "levels.json")
    torch.save(tiny_cnn().state_dict(), d / "other.pt")
    return d


def _run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_finetune_resumes_exactly_and_evaluates(ft_files, shared_dir, capsys):
    d = ft_files
    base = ["finetune", "--levels", d / "levels.json", "--checkpoint", shared_dir / "models/resnet18_cifar10.pt",
            "--data", d / "train.npz", "--epochs", 2, "--batch-size", 96, "--device", "cpu", "--seed", 3]
    code, out, err = _run(base + ["-o", d / "straight.pt"], capsys)
    assert code == 0, err
    assert "epoch 2" in out and "finetune on" in err
    code, _, err = _run(base + ["-o", d / "sliced.pt", "--stop-after", 1], capsys)
    assert code == 0, err
    code, _, err = _run(base + ["-o", d / "sliced.pt", "--resume"], capsys)
    assert code == 0, err
    a, b = (torch.load(d / f, weights_only=True) for f in ("straight.pt", "sliced.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = torch.load(shared_dir / "models/resnet18_cifar10.pt", weights_only=True)
    assert not torch.equal(a["layer1.0.conv1.weight"], start["layer1.0.conv1.weight"].float())
    load_model(d / "straight.pt")
    code, out, err = _run(["evaluate", "--levels", d / "levels.json", "--checkpoint", d / "straight.pt",
                           "--data", d / "test.npz", "--observer", "minmax", "--granularity", "channel",
                           "--no-noise", "-o", d / "ev"], capsys)
    assert code == 0, err
    code, _, err = _run(base + ["-o", d / "straight.pt"], capsys)          # no silent overwrite
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1


BAD = [(["--checkpoint", "other.pt"], "not a resnet18-cifar10 checkpoint")]
if not torch.cuda.is_available():
    BAD.append((["--device", "cuda"], "cuda"))


@pytest.mark.parametrize("change, needle", BAD)
def test_finetune_bad_inputs(ft_files, shared_dir, capsys, change, needle):
    d = ft_files
    opts = {"--levels": d / "levels.json", "--checkpoint": shared_dir / "models/resnet18_cifar10.pt",
            "--data": d / "train.npz", "-o": d / "bad.pt"}
    opts[change[0]] = d / change[1] if change[0] == "--checkpoint" else change[1]
    args = ["finetune"] + [v for kv in opts.items() for v in kv]
    code, _, err = _run(args, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (d / "bad.pt").exists()
