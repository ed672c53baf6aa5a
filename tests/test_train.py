"""Training: the ResNet-18 on a tiny real subset through the CLI, checkpoint format, exact resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labspin.cli import main as cli_main
from labspin.errors import UserError
from labspin.quant.data import load_cifar10
from labspin.quant.model import load_model
from labspin.quant.train import augment, state_path, train


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory, shared_dir):
    d = load_cifar10(shared_dir / "data/cifar10", "test").subset(96)
    path = tmp_path_factory.mktemp("train") / "tiny.npz"
    np.savez(path, x=d.x.numpy(), y=d.y.numpy())
    return path


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_augment_crops_and_flips_within_padding():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(2):                     # each image is one of the 9x9 crops, maybe flipped
        crops = [padded[i, :, a:a + 32, b:b + 32] for a in range(9) for b in range(9)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)


def test_resume_repeats_a_straight_run_exactly(tmp_path, small_npz):
    data = load_cifar10(small_npz)
    kw = dict(epochs=2, batch_size=32, lr=0.05, model_fn=tiny, seed=4)
    steps = []
    straight = train(data, tmp_path / "a.pt", progress=lambda *a: steps.append(a), **kw)
    assert steps[0] == ("epoch 1/2", 1, 3) and steps[-1] == ("epoch 2/2", 3, 3) and len(steps) == 6
    first = train(data, tmp_path / "b.pt", stop_after=1, **kw)
    assert first["epoch"] == 1
    resumed = train(data, tmp_path / "b.pt", resume=tmp_path / "b.pt", model_fn=tiny)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    a = torch.load(state_path(tmp_path / "a.pt"), weights_only=True)["model"]
    b = torch.load(state_path(tmp_path / "b.pt"), weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight["history"][1]["loss"] == pytest.approx(resumed["history"][1]["loss"], rel=1e-6)
    with pytest.raises(UserError, match="exists"):
        train(data, tmp_path / "a.pt", **kw)


def test_cli_train_resnet18_one_epoch_then_resume(tmp_path, small_npz, capsys):
    ck = tmp_path / "ck.pt"
    base = ["train", "--data", str(small_npz), "-o", str(ck), "--batch-size", "48", "--lr", "0.05"]
    with pytest.raises(SystemExit) as exc:
        cli_main(base + ["--epochs", "2", "--stop-after", "1", "--seed", "1"])
    cap = capsys.readouterr()
    assert exc.value.code == 0, cap.err
    assert "epoch 1:" in cap.out and "epoch 1/2" in cap.err     # the CLI draws the library's progress
    sd = torch.load(ck, weights_only=True)       # the shared checkpoint's format: fp16 state_dict
    assert sd["conv1.weight"].dtype == torch.float16 and sd["conv1.weight"].shape == (64, 3, 3, 3)
    load_model(ck)                                # the evaluator takes it
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--data", str(small_npz), "-o", str(ck), "--resume", str(ck)])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert "epoch 2:" in out and "epoch 1:" in out
    assert torch.load(state_path(ck), weights_only=True)["epoch"] == 2


def test_cli_train_bad_inputs(tmp_path, small_npz, capsys):
    for args, needle in (
        (["--data", str(tmp_path / "none.npz"), "-o", str(tmp_path / "x.pt")], "data not found"),
        (["--data", str(small_npz), "-o", str(tmp_path / "x.pt"), "--resume", str(tmp_path / "y.pt")],
         "no training state"),
        (["--data", str(small_npz), "-o", str(small_npz)], "exists"),
        (["--data", str(small_npz), "-o", str(tmp_path / "x.pt"), "--batch-size", "0"],
         "labspin: error: --batch-size: must be an integer >= 1, got 0"),     # field batch_size -> flag
    ):
        with pytest.raises(SystemExit) as exc:
            cli_main(["train", *args])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_training_imports_no_click():
    """The library reports progress through a callback; only labspin.cli draws bars (click)."""
    import subprocess
    import sys
    code = "import sys, labspin.quant.train, labspin.quant.finetune; print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
