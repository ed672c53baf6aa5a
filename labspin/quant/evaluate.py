"""The evaluation grid: FP32 vs every (observer × granularity × noise) PTQ configuration.

Weights are quantized once per configuration and, with CTC noise, re-programmed once per
Monte-Carlo trial (seeded); each evaluation is the same BN-folded FP32 graph in channels_last under
``inference_mode``, so quantized evaluation runs at FP32 speed.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from labspin.errors import UserError
from labspin.quant.data import ImageSet, load_cifar10, normalize
from labspin.quant.levels_map import DeviceLevels, differential, levels_from_table, uniform_levels
from labspin.quant.model import fold_bn, load_model, quantizable_layers
from labspin.quant.observers import GRANULARITIES, OBSERVERS, make_observer
from labspin.quant.quantize import QuantizedWeights, input_means, quantize_weights

# Hsin et al., Adv. Sci. 12, 2417735 (2025): tilted device, 11 states, ResNet-18 / CIFAR-10 PTQ.
STUDY = {("minmax", "channel", False): 81.51, ("mse", "channel", False): 81.12}
PAPER_GRID = dict(observers=("minmax", "mse"), granularities=("tensor", "channel"), noise=(False, True))
OUTPUT_FILES = ("results.csv", "results.md", "accuracy.png", "config.json")


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"--device: expected cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device: cuda requested but no CUDA device is available")
    return torch.device(device)


MAPPINGS = ("direct", "differential")


def as_levels(levels, mapping: str = "direct") -> DeviceLevels:
    """DeviceLevels from a DeviceLevels, a LevelTable, a path to a level file, or an int (uniform K);
    ``mapping="differential"`` programs each weight on a pair of devices (see levels_map)."""
    if mapping not in MAPPINGS:
        raise UserError(f"--mapping: unknown {mapping!r} (choose from {', '.join(MAPPINGS)})")
    if isinstance(levels, DeviceLevels):
        lv = levels
    elif isinstance(levels, (int, np.integer)):
        lv = uniform_levels(int(levels))
    elif isinstance(levels, (str, os.PathLike)):
        from labspin.levels import load_levels
        lv = levels_from_table(load_levels(levels), str(levels))
    else:
        lv = levels_from_table(levels)
    return differential(lv) if mapping == "differential" else lv


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def prepare(data: ImageSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised channels_last inputs and labels on ``device`` (done once per evaluation)."""
    return normalize(data.x.to(device)), data.y.to(device)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500, bf16: bool = False) -> torch.Tensor:
    """Top-1 class of ``model`` for every prepared input."""
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=x.device)
    out = []
    for i in range(0, x.shape[0], batch_size):
        with _autocast(x.device, bf16):
            out.append(model(x[i:i + batch_size]).argmax(1))
    return torch.cat(out)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
             bf16: bool = False) -> float:
    """Top-1 accuracy (%) of ``model`` on prepared inputs."""
    pred = predict(model, x, batch_size=batch_size, bf16=bf16)
    return 100.0 * int((pred == y).sum()) / max(1, x.shape[0])


def paired_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean difference (points) of per-image scores ``a − b`` (0..1, same images) and the half-width
    of its normal 95 % interval over the images: how far apart two configurations really are when
    the test set, not the quantization, decides most of the digits."""
    d = 100.0 * (np.asarray(a, float) - np.asarray(b, float))
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return float(d.mean()) if d.size else float("nan"), float(half)


def _eval_model(model: nn.Module, device: torch.device) -> nn.Module:
    return model.to(device).to(memory_format=torch.channels_last).eval()


class ActQuant:
    """8-bit (or n-bit) activation fake-quant on the inputs of the quantized layers.

    torch.ao ``HistogramObserver`` per layer input, calibrated on one batch with FP32 weights; then a
    forward pre-hook applies ``fake_quantize_per_tensor_affine`` with the observed (scale, zp).
    """

    def __init__(self, model: nn.Module, layers: list[str], bits: int, calib: torch.Tensor,
                 observer: str = "histogram"):
        from torch.ao.quantization import HistogramObserver, MinMaxObserver
        if not 2 <= bits <= 8:
            raise UserError(f"--act-bits: must be 2..8, got {bits}")
        self.qmin, self.qmax = 0, 2 ** bits - 1
        mods = dict(model.named_modules())
        obs = {}
        cls = HistogramObserver if observer == "histogram" else MinMaxObserver
        hooks = []
        for n in layers:
            obs[n] = cls(dtype=torch.quint8, quant_min=self.qmin, quant_max=self.qmax).to(calib.device)
            hooks.append(mods[n].register_forward_pre_hook(
                lambda m, a, o=obs[n]: (o(a[0].float()), None)[1]))
        with torch.inference_mode():
            model(calib)
        for h in hooks:
            h.remove()
        self.qparams = {n: tuple(t for t in o.calculate_qparams()) for n, o in obs.items()}
        self.layers = layers
        self.bits = bits

    def attach(self, model: nn.Module) -> list:
        mods = dict(model.named_modules())
        handles = []
        for n in self.layers:
            scale, zp = self.qparams[n]
            s, z, lo, hi = float(scale), int(zp), self.qmin, self.qmax
            handles.append(mods[n].register_forward_pre_hook(
                lambda m, a, s=s, z=z: (torch.fake_quantize_per_tensor_affine(a[0], s, z, lo, hi),)))
        return handles


def trial_seeds(seed: int, trials: int) -> list[int]:
    """One independent seed per Monte-Carlo trial (numpy SeedSequence, as elsewhere in labspin)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(trials)]


def _parse_list(value: str | Sequence[str], allowed: Iterable[str], option: str) -> list[str]:
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
    allowed = list(allowed)
    for v in items:
        if v not in allowed:
            raise UserError(f"{option}: unknown {v!r} (choose from {', '.join(allowed)})")
    if not items:
        raise UserError(f"{option}: empty list")
    return list(dict.fromkeys(items))


def config_label(observer: str, granularity: str, noise: bool, mapping: str = "direct") -> str:
    name = {"minmax": "min-max", "mse": "MSE", "percentile": "percentile"}[observer]
    pair = "differential " if mapping == "differential" else ""
    return f"{pair}per-{granularity} {name}" + (" + CTC noise" if noise else "")


def evaluate_levels(
    model: nn.Module | str | os.PathLike,
    levels,
    data: ImageSet | str | os.PathLike,
    *,
    observers: str | Sequence[str] = ("minmax", "mse"),
    granularities: str | Sequence[str] = ("tensor", "channel"),
    noise: bool | Sequence[bool] = (False, True),
    trials: int = 5,
    subset: int | None = None,
    batch_size: int = 500,
    device: str = "cpu",
    seed: int = 0,
    layers: Sequence[str] | None = None,
    act_bits: int | None = None,
    bias_correction: bool = False,
    mapping: str = "direct",
    bf16: bool = False,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Accuracy table: one FP32 row, then one row per (observer × granularity × noise).

    ``model``: a module (any CNN taking normalised NCHW inputs) or a ResNet-18 checkpoint path;
    ``levels``: DeviceLevels, LevelTable, level-file path, or int K (ideal uniform grid);
    ``data``: ImageSet or a CIFAR-10 path; ``noise``: which of (False, True) to run; noise rows give
    mean ± std over ``trials`` seeded programming draws. Columns: config, observer, granularity,
    noise, trials, accuracy (%), std (%), delta (points vs FP32), ci95 (half-width of the paired
    95 % interval of delta over the images), agreement (% of images with FP32's top-1), weight_mse,
    images, seconds. ``df.attrs["notes"]`` compares MSE with min-max the same paired way.
    ``mapping``: "direct" (one device per weight) or "differential" (a device pair, 2K − 1 signed
    levels). ``bias_correction``: correct each layer's bias for the mean output shift of its (noise-free)
    quantization error, with input means from the first 256 evaluation images (as ``act_bits``'
    calibration). ``df.attrs`` holds the run's metadata (levels, layers, seeds, ...).
    """
    say = progress or (lambda msg: None)
    obs_names = _parse_list(observers, OBSERVERS, "--observer")
    grans = _parse_list(granularities, GRANULARITIES, "--granularity")
    noises = [bool(noise)] if isinstance(noise, bool) else [bool(n) for n in noise]
    if not isinstance(trials, int) or trials < 1:
        raise UserError(f"--trials: must be an integer >= 1, got {trials!r}")
    if batch_size < 1:
        raise UserError(f"--batch-size: must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    lv = as_levels(levels, mapping)
    ckpt = None
    if not isinstance(model, nn.Module):
        ckpt = str(model)
        model = load_model(model)
    if not isinstance(data, ImageSet):
        data = load_cifar10(data, "test")
    data = data.subset(subset)
    notes = list(lv.meta.get("notes") or [])      # e.g. a level CSV sorted on reading
    if True in noises and not lv.has_noise:
        notes.append("levels have zero std: CTC-noise rows omitted")
        noises = [n for n in noises if not n] or [False]

    fp = _eval_model(fold_bn(model), dev)
    names = quantizable_layers(fp, list(layers) if layers else None)   # names or globs
    if bias_correction:        # every corrected layer needs a bias (before the FP32 snapshot)
        for n in names:
            m = dict(fp.named_modules())[n]
            if m.bias is None:
                m.bias = nn.Parameter(torch.zeros(m.weight.shape[0], device=dev), requires_grad=False)
    fp32_state = {k: v.clone() for k, v in fp.state_dict().items()}
    x, y = prepare(data, dev)

    rows = []
    t0 = time.perf_counter()
    pred_fp = predict(fp, x, batch_size=batch_size, bf16=bf16)
    right_fp = (pred_fp == y).cpu().numpy().astype(float)
    acc_fp = 100.0 * float(right_fp.mean()) if right_fp.size else 0.0
    rows.append(dict(config="FP32", observer="", granularity="", noise=False, trials=1,
                     accuracy=acc_fp, std=0.0, delta=0.0, ci95=0.0, agreement=100.0, weight_mse=0.0,
                     images=len(data), seconds=time.perf_counter() - t0))
    scores: dict[tuple[str, str, bool], tuple[np.ndarray, np.ndarray]] = {}  # per image: right, agrees
    say(f"FP32: {acc_fp:.2f} % on {len(data)} images")

    means = input_means(fp, names, x[: min(256, x.shape[0])]) if bias_correction else None
    act = None
    if act_bits:
        act = ActQuant(fp, names, int(act_bits), x[: min(256, x.shape[0])])
    handles = act.attach(fp) if act else []
    n_weights = sum(dict(fp.named_modules())[n].weight.numel() for n in names)
    seeds = trial_seeds(seed, trials)
    try:
        for gran in grans:
            for obs_name in obs_names:
                fp.load_state_dict(fp32_state)
                tq = time.perf_counter()
                qw: QuantizedWeights = quantize_weights(fp, lv.to(dev), make_observer(obs_name, gran), names)
                wmse = qw.squared_error(fp) / n_weights
                tq = time.perf_counter() - tq
                for nz in noises:
                    t1 = time.perf_counter()
                    accs = []
                    score, same = np.zeros(len(data)), np.zeros(len(data))
                    for ts in (seeds if nz else [None]):
                        gen = None
                        if ts is not None:
                            gen = torch.Generator(device=dev)
                            gen.manual_seed(ts)
                        qw.apply(fp, gen, means)
                        pred = predict(fp, x, batch_size=batch_size, bf16=bf16)
                        ok = (pred == y).cpu().numpy()
                        score += ok
                        accs.append(100.0 * float(ok.mean()) if ok.size else 0.0)
                        same += (pred == pred_fp).cpu().numpy()
                    a = np.asarray(accs)
                    score, same = score / len(accs), same / len(accs)
                    scores[(obs_name, gran, nz)] = (score, same)
                    row = dict(config=config_label(obs_name, gran, nz, mapping), observer=obs_name,
                               granularity=gran, noise=nz, trials=len(accs), accuracy=float(a.mean()),
                               std=float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                               delta=float(a.mean() - acc_fp),
                               ci95=paired_interval(score, right_fp)[1],
                               agreement=100.0 * float(same.mean()) if same.size else 0.0,
                               weight_mse=wmse, images=len(data),
                               seconds=time.perf_counter() - t1 + tq)
                    rows.append(row)
                    say(f"{row['config']}: {row['accuracy']:.2f} ± {row['std']:.2f} % "
                        f"(Δ {row['delta']:+.2f})")
    finally:
        for h in handles:
            h.remove()
    df = pd.DataFrame(rows)
    notes += observer_comparisons(scores, mapping)
    df.attrs.update(dict(
        levels=lv.label, levels_meta=lv.meta, k=len(lv), checkpoint=ckpt, data=data.source,
        images=len(data), layers=names, act_bits=act_bits, bias_correction=bool(bias_correction),
        mapping=mapping,
        seed=seed, trial_seeds=seeds,
        device=str(dev), bf16=bf16, notes=notes,
        normalized_levels=[round(float(v), 6) for v in lv.values],
        normalized_std=[round(float(v), 6) for v in lv.std]))
    return df


def observer_comparisons(scores: dict[tuple[str, str, bool], tuple[np.ndarray, np.ndarray]],
                         mapping: str = "direct") -> list[str]:
    """The study's question, answered with its uncertainty: MSE − min-max per granularity (and
    noise) in accuracy and in top-1 agreement with FP32, paired over the same images.

    ``scores``: per configuration (observer, granularity, noise), the per-image share of trials
    that were right and that agreed with FP32.
    """
    def verdict(d: float, half: float) -> str:
        return "not resolved by these images" if abs(d) <= half else ("MSE" if d > 0 else "min-max") + " higher"

    out = []
    for (obs, gran, nz), (right, same) in scores.items():
        other = scores.get(("minmax", gran, nz))
        if obs == "mse" and other is not None and right.size > 1:
            d, half = paired_interval(right, other[0])
            g, ghalf = paired_interval(same, other[1])
            out.append(f"{config_label('mse', gran, nz, mapping)} − min-max: accuracy {d:+.2f} ± {half:.2f} "
                       f"points ({verdict(d, half)}), agreement with FP32 {g:+.2f} ± {ghalf:.2f} points "
                       f"({verdict(g, ghalf)}); paired 95 % intervals over {right.size} images")
    return out


def paper_table(model, levels, data, **kw) -> pd.DataFrame:
    """The study's grid (per-tensor/per-channel × min-max/MSE, with and without CTC noise), with
    the study's reported accuracies alongside where it gives them."""
    df = evaluate_levels(model, levels, data, **{**kw, **PAPER_GRID})
    df["study"] = [STUDY.get((r.observer, r.granularity, bool(r.noise)), np.nan) for r in df.itertuples()]
    return df


# --------------------------------------------------------------------------- outputs

def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """Human columns: accuracy as 'mean ± std' for noise rows, Δ with sign."""
    out = pd.DataFrame({
        "configuration": df["config"],
        "accuracy (%)": [f"{a:.2f} ± {s:.2f}" if t > 1 else f"{a:.2f}"
                         for a, s, t in zip(df["accuracy"], df["std"], df["trials"])],
        "Δ vs FP32 (points)": [("—" if c == "FP32" else f"{d:+.2f}") for c, d in zip(df["config"], df["delta"])],
        "Δ 95 % interval": [("—" if c == "FP32" else f"± {h:.2f}") for c, h in zip(df["config"], df["ci95"])],
        "top-1 agreement with FP32 (%)": [("—" if c == "FP32" else f"{g:.2f}")
                                          for c, g in zip(df["config"], df["agreement"])],
        "trials": df["trials"],
        "weight MSE": [("—" if c == "FP32" else f"{m:.3g}") for c, m in zip(df["config"], df["weight_mse"])],
    })
    if "study" in df:
        out["study (%)"] = ["" if np.isnan(v) else f"{v:.2f}" for v in df["study"]]
    return out


def markdown(df: pd.DataFrame) -> str:
    t = format_table(df)
    cols = list(t.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in t.itertuples(index=False)]
    a = df.attrs
    head = (f"Levels: {a.get('levels')} (K = {a.get('k')}); images: {a.get('images')}; "
            f"quantized layers: {len(a.get('layers', []))}; act bits: {a.get('act_bits') or 'FP32'}; "
            f"bias correction: {'yes' if a.get('bias_correction') else 'no'}; seed: {a.get('seed')}")
    return head + "\n\n" + "\n".join(lines) + "\n"


def plot(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Bar chart of accuracy per configuration, error bars = std over trials, FP32 as a line.

    Tick labels are wrapped word by word (one bar's label never reaches the next), value labels
    sit a few points above each error bar's cap, and the title comes from ``df.attrs``.
    """
    import textwrap

    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    q = df[df["config"] != "FP32"]
    fp = float(df.loc[df["config"] == "FP32", "accuracy"].iloc[0])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(q) + 2.5), 5.0), constrained_layout=True)
    colors = ["#c44e52" if n else "#4c72b0" for n in q["noise"]]
    labels = []
    for c in q["config"]:
        base, plus, extra = c.partition(" + ")
        labels.append("\n".join(textwrap.wrap(base, 12, break_long_words=False) + ([f"+ {extra}"] if plus else [])))
    xs = np.arange(len(q))
    acc = q["accuracy"].to_numpy(float)
    noisy = (q["trials"] > 1).to_numpy()
    err = np.where(noisy, q["std"].fillna(0).to_numpy(float), 0.0)
    ax.bar(xs, acc, color=colors, edgecolor="black", linewidth=0.6)
    if noisy.any():
        ax.errorbar(xs[noisy], acc[noisy], yerr=err[noisy], fmt="none", ecolor="black", capsize=4, linewidth=1)
    fp_line = ax.axhline(fp, color="black", linestyle="--", linewidth=1, label=f"FP32 {fp:.2f} %")
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_ylabel("top-1 accuracy on CIFAR-10 test images (%)")
    lo = max(0.0, min(float(acc.min()) if len(q) else fp, fp) - 10)
    top = max(fp, float((acc + err).max()) if len(q) else fp)
    ax.set_ylim(lo, min(100.0, top + 0.08 * (top - lo) + 1))
    # values inside the bars at their foot: clear of the error bars and the FP32 line up top;
    # a bar too short to hold its value gets it above its error bar instead
    notes = []
    for xi, a, e, n in zip(xs, acc, err, noisy):
        txt = f"{a:.1f}\n±{e:.1f}" if n else f"{a:.1f}"
        notes.append(ax.annotate(txt, (xi, lo), xytext=(0, 4), textcoords="offset points", ha="center",
                                 va="bottom", fontsize=8, linespacing=0.95, color="white", fontweight="bold"))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for t, xi, a, e in zip(notes, xs, acc, err):
        low = ax.transData.transform((xi, a - e))[1]          # the lowest point of bar top / error bar
        if t.get_window_extent(renderer).y1 > low - 2:
            t.xy = (xi, a + e)
            t.set_color("black")
    a = df.attrs
    mapping = a.get("mapping")
    ax.set_title(f"ResNet-18 PTQ on {a.get('levels', 'levels')} (K = {a.get('k')}), "
                 f"{a.get('images')} test images{'' if not mapping else f'; {mapping} mapping'}\n"
                 "bars: programmed means; red: with CTC noise, error bars = std over trials", fontsize=9)
    from matplotlib.patches import Patch
    ax.legend(handles=[fp_line, Patch(color="#4c72b0", label="programmed means"),
                       Patch(color="#c44e52", label="with CTC noise (mean ± std)")],
              fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return Path(path)


def check_output_dir(outdir: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse (before any work) to overwrite existing results unless ``overwrite``."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: output exists and is not a folder")
    if not overwrite:
        for f in OUTPUT_FILES:
            if (out / f).exists():
                raise UserError(f"{out / f}: output exists (use --overwrite)")
    return out


def write_report(df: pd.DataFrame, outdir: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
    """results.csv, results.md, accuracy.png and config.json (levels, layers, seeds) in ``outdir``."""
    out = check_output_dir(outdir, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    paths = {f: out / f for f in OUTPUT_FILES}
    df.to_csv(paths["results.csv"], index=False, float_format="%.4f")
    paths["results.md"].write_text(markdown(df), encoding="utf-8")
    plot(df, paths["accuracy.png"])
    meta = {k: v for k, v in df.attrs.items()}
    paths["config.json"].write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return paths
