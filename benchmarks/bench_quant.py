"""Quantized-CNN evaluator: speed, and (``--targets``) accuracy on the full CIFAR-10 test set.

    python benchmarks/bench_quant.py                 # img/s FP32/bf16 (and compiled), quantized or not; calibration times
    python benchmarks/bench_quant.py --targets --rounding learned   # auto + learned rounding rows
    python benchmarks/bench_quant.py --targets       # full 10,000-image accuracy table (~15-30 min on 2 cores)
    python benchmarks/bench_quant.py --targets --bias-correction   # the same with bias correction

Paths: --checkpoint / --data, or env LABSPIN_CHECKPOINT / LABSPIN_DATA, else ../shared.
The 11-level table is a tilted-preset staircase from labspin.sim_backend (200 cycles of the nominal
device), its std rescaled so the mean window CTC is exactly 2 %; a synthetic table if the simulator
is missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LABSPIN_SHARED", ROOT.parent / "shared"))


def sim_level_table(ctc: float = 0.02, n_states: int = 11, cycles: int = 200, seed: int = 1):
    """Staircase levels of the simulated tilted device, std scaled to ``ctc`` of the window."""
    from labspin.levels import LevelTable
    from labspin.sim_backend.physics import HallBarBatch, preset, suggested_staircase
    p = preset("tilted")
    st = suggested_staircase(p, n_states)
    b = HallBarBatch(p, cycles, seed=seed, nominal=True)   # one device, `cycles` cycles
    b.pulse(st["reset_current"], st["pulse_width"])
    r = [b.hall_resistance.copy()]
    for a in st["amplitudes"]:
        b.pulse(a, st["pulse_width"])
        r.append(b.hall_resistance.copy())
    r = np.array(r)
    mean, std, src = r.mean(1), r.std(1, ddof=1), "sim_backend tilted staircase"
    span = mean[-1] - mean[0]
    std = std * (ctc * span / std.mean())
    return LevelTable(mean, std, np.full(n_states, cycles),
                      device={"id": f"tilted-sim-{n_states}", "type": "tilted", "source": src},
                      ctc_definition="window")


def _paths(args):
    ckpt = args.checkpoint or os.environ.get("LABSPIN_CHECKPOINT") or SHARED / "models/resnet18_cifar10.pt"
    data = args.data or os.environ.get("LABSPIN_DATA") or SHARED / "data/cifar10"
    return ckpt, data


def bench_speed(args) -> None:
    from labspin.quant.data import load_cifar10
    from labspin.quant.evaluate import _eval_model, accuracy, prepare
    from labspin.quant.levels_map import levels_from_table
    from labspin.quant.model import fold_bn, load_model
    from labspin.quant.observers import make_observer
    from labspin.quant.quantize import quantize_weights

    ckpt, data = _paths(args)
    model = load_model(ckpt)
    d = load_cifar10(data).subset(args.images)
    dev = torch.device("cpu")
    x, y = prepare(d, dev)
    lv = levels_from_table(sim_level_table())
    fp = _eval_model(fold_bn(model), dev)
    qm = _eval_model(fold_bn(model), dev)
    calib = {}
    for obs in ("minmax", "mse", "percentile"):
        for gran in ("tensor", "channel"):
            t = time.perf_counter()
            qw = quantize_weights(qm, lv, make_observer(obs, gran))
            calib[(obs, gran)] = time.perf_counter() - t
    qw = quantize_weights(qm, lv, make_observer("minmax", "channel"))
    t = time.perf_counter()
    qw.apply(qm, torch.Generator().manual_seed(0))
    t_apply = time.perf_counter() - t
    accuracy(fp, x[:100], y[:100])                  # warm-up
    accuracy(qm, x[:100], y[:100])
    from labspin.quant.evaluate import _compiled
    t = time.perf_counter()
    notes: list[str] = []
    qc = _compiled(qm, x[:args.batch_size], True, notes)   # the graph the demo runs (bf16, compiled)
    t_compile = time.perf_counter() - t
    runs = (("fp32", fp, False), ("fp32 quantized", qm, False), ("bf16", fp, True), ("bf16 quantized", qm, True),
            ("bf16 quantized, torch.compile", qc, True))
    times = {name: [] for name, _, _ in runs}
    for _ in range(args.repeats):                    # interleaved: all see the same machine load
        for name, m, bf in runs:
            t = time.perf_counter()
            accuracy(m, x, y, batch_size=args.batch_size, bf16=bf)
            times[name].append(time.perf_counter() - t)
    tf, tq = np.array(times["fp32"]), np.array(times["fp32 quantized"])
    print(f"# bench_quant: {len(d)} images, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.repeats} interleaved repeats (median)")
    print("| quantity | value |\n|---|---|")
    for name, ts in times.items():
        print(f"| eval throughput {name} (11 levels per-channel, CTC draw, when quantized) | "
              f"{len(d) / np.median(ts):.1f} img/s |")
    print(f"| ratio quantized / FP32 (median of per-repeat ratios) | {np.median(tf / tq):.3f} |")
    print(f"| torch.compile of the quantized model (first call, bf16) | {t_compile:.1f} s"
          + (f" ({notes[0]})" if notes else "") + " |")
    from labspin.quant.calibrate import quantize_auto, quantize_learned
    from labspin.quant.model import quantizable_layers
    xc = prepare(load_cifar10(data, "train").subset(args.calib_images), dev)[0]
    names = quantizable_layers(qm)
    t = time.perf_counter()
    qa = quantize_auto(qm, lv, "channel", names, xc[:256])
    t_auto = time.perf_counter() - t
    t = time.perf_counter()
    quantize_learned(qm, qa, xc, iterations=args.rounding_iterations)
    t_learned = time.perf_counter() - t
    print(f"| calibration auto observer, all 21 layers, 256 images | {t_auto:.1f} s |")
    print(f"| calibration learned rounding, all 21 layers, {xc.shape[0]} images, "
          f"{args.rounding_iterations} steps/layer | {t_learned:.1f} s |")
    print(f"| programming one noisy weight set (all layers) | {t_apply * 1e3:.0f} ms |")
    for (obs, gran), s in calib.items():
        print(f"| calibration {obs} per-{gran}, all 21 layers | {s:.2f} s |")


def bench_targets(args) -> None:
    from labspin.quant.evaluate import evaluate_levels, markdown, write_report
    from labspin.quant.levels_map import uniform_levels
    from labspin.quant.model import load_model

    ckpt, data = _paths(args)
    table = sim_level_table()
    print("levels (ohm):", np.round(table.mean, 4).tolist(), "std:", np.round(table.std, 5).tolist(),
          f"mean window CTC {np.mean(table.std) / np.ptp(table.mean):.4f}", file=sys.stderr)
    model = load_model(ckpt)
    t = time.perf_counter()
    df = evaluate_levels(model, table, data, observers="minmax,mse,auto", granularities="channel",
                         noise=(False, True), trials=5, subset=args.subset, seed=0, rounding=args.rounding,
                         batch_size=args.batch_size, bf16=args.bf16, bias_correction=args.bias_correction,
                         progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(markdown(df))
    du = evaluate_levels(model, uniform_levels(11), data, observers="minmax", granularities="channel",
                         noise=False, subset=args.subset, batch_size=args.batch_size, bf16=args.bf16,
                         bias_correction=args.bias_correction)
    print(markdown(du))
    print(f"total {time.perf_counter() - t:.0f} s")
    if args.output:
        write_report(df, args.output, overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", action="store_true", help="full-test-set accuracy table")
    ap.add_argument("--checkpoint")
    ap.add_argument("--data")
    ap.add_argument("--images", type=int, default=1000, help="images per throughput pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=125, help="images per pass (the demo's)")
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--rounding", choices=["nearest", "learned"], default="nearest")
    ap.add_argument("--rounding-iterations", type=int, default=200)
    ap.add_argument("--calib-images", type=int, default=512)
    ap.add_argument("--bias-correction", action="store_true", help="evaluate with bias correction")
    ap.add_argument("-o", "--output", default=None, help="also write the report here (targets)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    (bench_targets if args.targets else bench_speed)(args)


if __name__ == "__main__":
    main()
