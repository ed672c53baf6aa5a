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

from labspin.errors import FieldError, UserError
from labspin.outputs import prepare_output_dir
from labspin.quant.data import ImageSet, load_cifar10, normalize
from labspin.quant.levels_map import DeviceLevels, differential, levels_from_table, uniform_levels
from labspin.quant.model import fold_bn, load_model, quantizable_layers
from labspin.quant import guard
from labspin.quant.levels_map import LADDERS
from labspin.quant.observers import GRANULARITIES, OBSERVERS, make_observer, observer_label
from labspin.quant.quantize import QuantizedWeights, input_means, quantize_weights

# Hsin et al., Adv. Sci. 12, 2417735 (2025): tilted device, 11 states, ResNet-18 / CIFAR-10 PTQ.
STUDY = {("minmax", "channel", False): 81.51, ("mse", "channel", False): 81.12}
PAPER_GRID = dict(observers=("minmax", "mse"), granularities=("tensor", "channel"), noise=(False, True))
OUTPUT_FILES = ("results.csv", "results.md", "accuracy.png", "config.json")


ROUNDINGS = ("nearest", "learned")
PRECISIONS = ("fp32", "bf16")
CALIB_IMAGES = 512


def observer_choices() -> tuple[str, ...]:
    """What --observer accepts: every registered observer (plugins included), and ``auto``."""
    return (*OBSERVERS, "auto")


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise FieldError("device", f"expected cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FieldError("device", "cuda requested but no CUDA device is available")
    return torch.device(device)


def calibration_set(data, calibration, n: int = CALIB_IMAGES) -> tuple[ImageSet, str]:
    """Calibration images: ``calibration`` if given, else the training split next to ``data`` (a
    folder), else the first evaluation images (said in the notes: they are then not held out)."""
    if isinstance(calibration, ImageSet):
        return calibration.subset(n), calibration.source
    if calibration is not None:
        c = load_cifar10(calibration, "train")
        return c.subset(n), c.source
    if not isinstance(data, ImageSet) and Path(data).is_dir():
        try:
            c = load_cifar10(data, "train")
            return c.subset(n), c.source
        except UserError:
            pass
    ev = data if isinstance(data, ImageSet) else load_cifar10(data, "test")
    return ev.subset(n), f"{ev.source} (evaluation images: not held out)"


MAPPINGS = ("direct", "differential")


def as_levels(levels, mapping: str = "direct") -> DeviceLevels:
    """DeviceLevels from a DeviceLevels, a LevelTable, a path to a level file, or an int (uniform K);
    ``mapping="differential"`` programs each weight on a pair of devices (see levels_map)."""
    if mapping not in MAPPINGS:
        raise FieldError("mapping", f"unknown {mapping!r} (choose from {', '.join(MAPPINGS)})")
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
    with _autocast(x.device, bf16):      # one context per pass: autocast keeps its weight casts across batches
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])


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


def _compiled(model: nn.Module, sample: torch.Tensor, bf16: bool, notes: list[str]) -> nn.Module:
    """``model`` through torch.compile (it shares the parameters, so programming the weights in
    place reaches it), tried on ``sample``; ``model`` itself where this machine cannot compile."""
    compiled = torch.compile(model, dynamic=False)
    try:
        predict(compiled, sample, batch_size=sample.shape[0], bf16=bf16)
    except Exception as exc:                 # no C++ compiler, an unsupported backend, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        notes.append(f"torch.compile unavailable here ({first[:120]}): eager forward passes")
        return model
    return compiled


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
            raise FieldError("act_bits", f"must be 2..8, got {bits}")
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


def _parse_list(value: str | Sequence[str], allowed: Iterable[str], key: str) -> list[str]:
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
    allowed = list(allowed)
    for v in items:
        if v not in allowed:
            raise FieldError(key, f"unknown {v!r} (choose from {', '.join(allowed)})")
    if not items:
        raise FieldError(key, "empty list")
    return list(dict.fromkeys(items))


def config_label(observer: str, granularity: str, noise: bool, mapping: str = "direct",
                 ladder: str = "full", rounding: str = "nearest") -> str:
    name = observer_label(observer)          # the observer's own label (registered with it)
    pair = "differential " if mapping == "differential" else ""
    lad = "" if ladder == "full" or observer == "auto" else f" ({ladder} ladder)"
    rnd = " + learned rounding" if rounding == "learned" else ""
    return f"{pair}per-{granularity} {name}{lad}{rnd}" + (" + CTC noise" if noise else "")


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
    ladder: str = "full",
    rounding: str = "nearest",
    rounding_noise: bool = False,
    rounding_iterations: int = 200,
    calibration: ImageSet | str | os.PathLike | None = None,
    bf16: bool = False,
    compile: bool = False,
    progress: Callable[[str], None] | None = None,
    on_row: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Accuracy table: one FP32 row, then one row per (observer × granularity × noise).

    ``model``: a module (any CNN taking normalised NCHW inputs) or a ResNet-18 checkpoint path;
    ``levels``: DeviceLevels, LevelTable, level-file path, or int K (ideal uniform grid);
    ``data``: ImageSet or a CIFAR-10 path; ``noise``: which of (False, True) to run; noise rows give
    mean ± std over ``trials`` seeded programming draws. Columns: config, observer, granularity,
    noise, trials, accuracy (%), std (%), delta (points vs FP32), ci95 (half-width of the paired
    95 % interval of delta over the images), agreement (% of images with FP32's top-1), weight_mse,
    flag (the guard: why this row is not to be trusted, '' if healthy), images, seconds.
    ``df.attrs["notes"]`` compares MSE with min-max the same paired way and repeats every flag.
    ``mapping``: "direct" (one device per weight) or "differential" (a device pair, 2K − 1 signed
    levels). ``ladder``: which part of the ladder the observers may use (``levels_map.LADDERS``).
    Observer "auto" picks per layer the candidate with the lowest output error on the calibration
    images; ``rounding="learned"`` replaces nearest rounding by AdaRound on them (``rounding_noise``:
    with a CTC draw in each step). ``bias_correction``: correct each layer's bias for the mean output
    shift of its (noise-free) quantization error. ``compile``: forward passes through
    ``torch.compile`` (~1.25× on 2 CPU cores once compiled, 2-30 s to compile; eager if it cannot
    compile here, said in the notes; not with ``act_bits``). Calibration images: ``calibration``, else the
    training split beside ``data``, else the first evaluation images. ``on_row(df)`` is called with
    the table so far after each configuration (written as they finish). ``df.attrs`` holds the
    run's metadata (levels, layers, seeds, per-layer choices, ...).
    """
    say = progress or (lambda msg: None)
    obs_names = _parse_list(observers, observer_choices(), "observer")
    grans = _parse_list(granularities, GRANULARITIES, "granularity")
    noises = [bool(noise)] if isinstance(noise, bool) else [bool(n) for n in noise]
    if not isinstance(trials, int) or trials < 1:
        raise FieldError("trials", f"must be an integer >= 1, got {trials!r}")
    if batch_size < 1:
        raise FieldError("batch_size", f"must be >= 1, got {batch_size}")
    if ladder not in LADDERS:
        raise FieldError("ladder", f"unknown {ladder!r} (choose from {', '.join(LADDERS)})")
    if rounding not in ROUNDINGS:
        raise FieldError("rounding", f"unknown {rounding!r} (choose from {', '.join(ROUNDINGS)})")
    dev = resolve_device(device)
    lv = as_levels(levels, mapping)
    from labspin.quant.levels_map import ladder_views
    ladder_views(lv, ladder)                    # < 2 usable levels after selection: refuse now
    ckpt = None
    if not isinstance(model, nn.Module):
        ckpt = str(model)
        model = load_model(model)
    needs_calib = "auto" in obs_names or rounding == "learned" or bias_correction
    calib_src = None
    if needs_calib:
        calib_set, calib_src = calibration_set(data, calibration)
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
    xc = prepare(calib_set, dev)[0] if needs_calib else None

    rows: list[dict] = []
    t0 = time.perf_counter()
    run = _compiled(fp, x[:batch_size], bf16, notes) if compile and not act_bits else fp
    pred_fp = predict(run, x, batch_size=batch_size, bf16=bf16)
    right_fp = (pred_fp == y).cpu().numpy().astype(float)
    acc_fp = 100.0 * float(right_fp.mean()) if right_fp.size else 0.0
    rows.append(dict(config="FP32", observer="", granularity="", noise=False, trials=1,
                     accuracy=acc_fp, std=0.0, delta=0.0, ci95=0.0, agreement=100.0, weight_mse=0.0,
                     flag="", images=len(data), seconds=time.perf_counter() - t0))
    scores: dict[tuple[str, str, bool], tuple[np.ndarray, np.ndarray]] = {}  # per image: right, agrees
    say(f"FP32: {acc_fp:.2f} % on {len(data)} images")

    means = input_means(fp, names, xc[:256]) if bias_correction else None
    act = None
    if act_bits:
        act = ActQuant(fp, names, int(act_bits), x[: min(256, x.shape[0])])
    n_weights = sum(dict(fp.named_modules())[n].weight.numel() for n in names)
    seeds = trial_seeds(seed, trials)
    ladder_causes = guard.ladder_causes(lv)
    choices: dict[str, dict[str, str]] = {}
    meta = dict(levels=lv.label, levels_meta=lv.meta, k=len(lv), checkpoint=ckpt, data=data.source,
                images=len(data), layers=names, act_bits=act_bits, bias_correction=bool(bias_correction),
                mapping=mapping, ladder=ladder, rounding=rounding, rounding_noise=bool(rounding_noise),
                calibration=calib_src, seed=seed, trial_seeds=seeds, device=str(dev), bf16=bf16,
                notes=notes, choices=choices,
                normalized_levels=[round(float(v), 6) for v in lv.values],
                normalized_std=[round(float(v), 6) for v in lv.std])

    def table() -> pd.DataFrame:
        df = pd.DataFrame(rows)
        df.attrs.update(meta)
        return df

    handles: list = []
    try:
        for gran in grans:
            for obs_name in obs_names:
                for h in handles:
                    h.remove()
                handles = []
                fp.load_state_dict(fp32_state)
                tq = time.perf_counter()
                qw = _quantize(fp, lv.to(dev), obs_name, gran, ladder, names, xc, bias_correction)
                label = config_label(obs_name, gran, False, mapping, ladder, rounding)
                if rounding == "learned":
                    from labspin.quant.calibrate import quantize_learned
                    say(f"{label}: learning the rounding of {len(names)} layers on {xc.shape[0]} images")
                    qw = quantize_learned(fp, qw, xc, iterations=rounding_iterations, noise=rounding_noise,
                                          centred=bias_correction, seed=seed)
                if qw.choices:
                    choices[label] = dict(qw.choices)
                wmse = qw.squared_error(fp) / n_weights
                causes = ladder_causes + guard.weight_causes(qw)
                handles = act.attach(fp) if act else []
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
                        pred = predict(run, x, batch_size=batch_size, bf16=bf16)
                        ok = (pred == y).cpu().numpy()
                        score += ok
                        accs.append(100.0 * float(ok.mean()) if ok.size else 0.0)
                        same += (pred == pred_fp).cpu().numpy()
                    a = np.asarray(accs)
                    score, same = score / len(accs), same / len(accs)
                    scores[(obs_name, gran, nz)] = (score, same)
                    agreement = 100.0 * float(same.mean()) if same.size else 0.0
                    delta = float(a.mean() - acc_fp)
                    row_causes = causes + ([guard.noise_cause(lv)] if nz else [])
                    if nz:               # noise to blame only when the noiseless row was healthy
                        clean = next((r for r in rows if r["observer"] == obs_name and r["granularity"] == gran
                                      and not r["noise"]), None)
                        if clean is not None and not clean["flag"]:
                            row_causes = [guard.noise_cause(lv)]
                    row = dict(config=config_label(obs_name, gran, nz, mapping, ladder, rounding),
                               observer=obs_name, granularity=gran, noise=nz, trials=len(accs),
                               accuracy=float(a.mean()), std=float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                               delta=delta, ci95=paired_interval(score, right_fp)[1], agreement=agreement,
                               weight_mse=wmse, flag=guard.flag(agreement, delta, row_causes),
                               images=len(data), seconds=time.perf_counter() - t1 + tq)
                    rows.append(row)
                    say(f"{row['config']}: {row['accuracy']:.2f} ± {row['std']:.2f} % "
                        f"(Δ {row['delta']:+.2f})" + (f"  ⚠ {row['flag']}" if row["flag"] else ""))
                    if on_row is not None:
                        on_row(table())
    finally:
        for h in handles:
            h.remove()
    notes += observer_comparisons(scores, mapping)
    notes += [f"⚠ {r['config']}: {r['flag']}" for r in rows if r["flag"]]
    return table()


def _quantize(fp: nn.Module, lv: DeviceLevels, obs_name: str, gran: str, ladder: str, names: list[str],
              xc: torch.Tensor | None, centred: bool) -> QuantizedWeights:
    """One configuration's weights: a named observer, or ``auto`` (per layer, by output error)."""
    if obs_name == "auto":
        from labspin.quant.calibrate import quantize_auto
        return quantize_auto(fp, lv, gran, names, xc[:256], centred=centred)
    return quantize_weights(fp, lv, make_observer(obs_name, gran, ladder), names)


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
    if "flag" in df:
        out["guard"] = ["⚠ " + f if isinstance(f, str) and f else "" for f in df["flag"]]
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
            f"bias correction: {'yes' if a.get('bias_correction') else 'no'}; "
            f"ladder: {a.get('ladder', 'full')}; rounding: {a.get('rounding', 'nearest')}; seed: {a.get('seed')}")
    flagged = [f"⚠ {c}: {f}" for c, f in zip(df["config"], df.get("flag", [""] * len(df))) if isinstance(f, str) and f]
    tail = ("\n" + "\n".join(flagged) + "\n") if flagged else ""
    return head + "\n\n" + "\n".join(lines) + "\n" + tail


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
    flags = q["flag"] if "flag" in q else [""] * len(q)
    labels = []
    for c, f in zip(q["config"], flags):
        base, plus, extra = c.partition(" + ")
        lines = textwrap.wrap(base, 12, break_long_words=False) + ([f"+ {extra}"] if plus else [])
        labels.append(("⚠ " if isinstance(f, str) and f else "") + "\n".join(lines))
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


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """results.csv at full precision (machine-readable: no rounding), written atomically so an
    interrupted evaluation leaves the configurations already finished."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    df.to_csv(tmp, index=False)
    os.replace(tmp, p)
    return p


def write_report(df: pd.DataFrame, outdir: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
    """results.csv, results.md, accuracy.png and config.json (levels, layers, seeds) in ``outdir``."""
    out = prepare_output_dir(outdir, overwrite=overwrite)
    paths = {f: out / f for f in OUTPUT_FILES}
    write_csv(df, paths["results.csv"])
    paths["results.md"].write_text(markdown(df), encoding="utf-8")
    plot(df, paths["accuracy.png"])
    meta = {k: v for k, v in df.attrs.items()}
    paths["config.json"].write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return paths
