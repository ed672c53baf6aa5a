"""The whole study in one call: measure three simulated devices, analyse them, evaluate their levels.

It composes the public parts (recipes → runner → run files → analysis → level tables → quantized
ResNet-18) and adds no mechanism of its own: anything it does, a user can do verb by verb.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from labspin import __version__
from labspin.errors import FieldError, UserError

# device preset -> its shipped CTC staircase recipe (ladders calibrated per preset)
DEVICES = {"orange_peel": "staircase_orange_peel", "idmi": "staircase_idmi", "tilted": "staircase"}
# the reference study (Hsin et al., Adv. Sci. 2025): tilted device, ResNet-18 / CIFAR-10 PTQ
STUDY = {"tilted": {"states": 11, "ctc": 0.02},
         "accuracy": {("minmax", "channel"): 81.51, ("mse", "channel"): 81.12}}


@dataclass
class DemoConfig:
    out_dir: Path
    quick: bool = False
    checkpoint: str | None = None
    data: str | None = None
    seed: int = 1
    cycles: int = 200                # staircase cycles: measuring is cheap on the simulator
    subset: int | None = None        # test images; default: 300 quick, all full
    trials: int | None = None        # CTC-noise Monte-Carlo trials; default: 2 quick, 5 full
    overwrite: bool = False
    device: str = "cpu"
    precision: str = "auto"          # fp32 | bf16 | auto: bf16 where the hardware does it natively
    resume: bool = False             # continue a partial output folder made with the same options

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        q = self.quick
        self.subset = self.subset if self.subset is not None else (300 if q else None)
        self.trials = self.trials or (2 if q else 5)
        for name in ("cycles", "trials"):
            if getattr(self, name) < 2:
                raise FieldError(name, f"must be >= 2, got {getattr(self, name)}")
        if self.subset is not None and self.subset < 1:
            raise FieldError("subset", f"must be >= 1, got {self.subset}")
        if self.precision not in PRECISIONS:
            raise FieldError("precision", f"unknown {self.precision!r} (choose from {', '.join(PRECISIONS)})")

    def resolve_precision(self) -> str:
        """``auto`` → bf16 where the torch device runs it natively (AMX/AVX512-BF16, CUDA), else fp32:
        the full study takes ~3× less time at the accuracy the README measures beside FP32."""
        if self.precision == "auto":
            from labspin.quant.evaluate import resolve_device
            from labspin.quant.train import bf16_supported
            self.precision = "bf16" if bf16_supported(resolve_device(self.device)) else "fp32"
        return self.precision

    @property
    def evaluates(self) -> bool:
        return bool(self.checkpoint and self.data)

    def record(self) -> dict:
        """The options that decide the demo's files: a resumed folder must have been made with them."""
        ab = lambda p: os.path.abspath(p) if p else None   # noqa: E731
        return {"seed": self.seed, "cycles": self.cycles, "quick": self.quick, "subset": self.subset,
                "trials": self.trials, "checkpoint": ab(self.checkpoint), "data": ab(self.data),
                "precision": self.precision}


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    devices: pd.DataFrame                       # one row per device: states, ctc, window, ...
    accuracy: pd.DataFrame | None = None        # long table: device, config, accuracy, std, delta
    notes: list[str] = field(default_factory=list)


def expected_seconds(cfg: DemoConfig) -> float:
    """Rough duration on 2 CPU cores, said up front (measurement ~negligible; eval ~250 img/s in
    FP32, ~900 img/s under bf16 autocast with AMX, ~1,100 compiled: benchmarks/bench_quant.py)."""
    measure = 3 * (cfg.cycles * 11 / 1500 + 2)
    if not cfg.evaluates:
        return measure + 10
    images = cfg.subset or 10_000
    evals_per_device = 2 + 6 + 6 * cfg.trials
    rate = (900 if cfg.quick else 1100) if cfg.precision == "bf16" else 250     # full: compiled
    return measure + 3 * (evals_per_device * images / rate + 8)


def _about(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


PRECISIONS = ("auto", "fp32", "bf16")
# images per forward pass: on 2 CPU cores ~125 runs 1.1-1.25x faster than the evaluator's 500 (the
# activations stay in cache; measured interleaved); 125 divides the 10,000 test images, so the
# compiled full run needs one graph
EVAL_BATCH = 125
CONFIG_FILE = "demo.json"          # the options a folder was made with (for resume)


class RunEnded(FieldError):
    """A demo run ended before its last point: the ``resume`` field continues the folder (the CLI
    spells it --resume), as `OutputExists` names ``overwrite``."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__("resume", what)

    def render(self, name: str) -> str:
        return f"{self.what}; continue with {name} (same options)"


def _start_folder(cfg: DemoConfig) -> Path:
    """A fresh output folder, or with ``resume`` the partial one made with the same options."""
    from labspin.outputs import prepare_output_dir

    rec = cfg.record()
    if cfg.resume:
        out = cfg.out_dir
        f = out / CONFIG_FILE
        if not f.is_file():
            raise FieldError("resume", f"{f}: not found (it continues a folder that labspin demo started)")
        try:
            old = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{f}: unreadable ({exc})") from None
        diff = [f"{k} {old.get(k)!r} (now {v!r})" for k, v in rec.items() if old.get(k) != v]
        if diff:
            raise FieldError("resume", f"{f}: needs the options the folder was made with: " + "; ".join(diff))
        return out
    out = prepare_output_dir(cfg.out_dir, overwrite=cfg.overwrite)
    (out / CONFIG_FILE).write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")
    return out


def _measure(device: str, recipe_name: str, cfg: DemoConfig, out: Path, say: Callable[[str], None],
             overrides: dict) -> Path:
    from labspin import measure
    from labspin.progress import ProgressBar
    from labspin.protocols import load_recipe
    from labspin.station import sim_station_spec
    from labspin.store import read_run

    recipe = load_recipe(recipe_name, overrides)
    path = out / f"{device}_{recipe.kind}.h5"
    spec = sim_station_spec(f"{device}:{cfg.seed}")
    bar = ProgressBar(label=f"[1/4] {device}:")
    how = "measured"
    if cfg.resume and path.exists():
        if read_run(path).status == "completed":
            say(f"  {device:<12} {recipe.kind:<10} {len(recipe.protocol):>6} points, kept -> {path.name}")
            return path
        runner = measure.run(measure.prepare_resume(path, [bar]))   # recipe, device, seed: the file's
        how = f"resumed at point {runner.start_index}"
    else:
        runner = measure.run(measure.prepare(recipe, spec, path, [bar],
                                             overwrite=cfg.overwrite or cfg.resume))
    if runner.state != "completed":
        raise RunEnded(f"{path}: the {recipe.kind} run on {device} ended {runner.state}"
                       + (f": {runner.error}" if runner.error else ""))
    say(f"  {device:<12} {recipe.kind:<10} {len(recipe.protocol):>6} points, {how} -> {path.name}")
    return path


def run_demo(cfg: DemoConfig, say: Callable[[str], None] = print) -> DemoResult:
    """Run the demo into ``cfg.out_dir``; returns the device and accuracy tables."""
    from labspin.analysis import analyze_run
    from labspin.report import compare_devices, plot_device_comparison, write_report

    if cfg.evaluates:               # check the ML inputs before spending minutes measuring
        from labspin.extras import require
        require("eval", "labspin demo")
        for key, p in (("checkpoint", cfg.checkpoint), ("data", cfg.data)):
            if not Path(p).exists():
                raise FieldError(key, f"{p}: no such file or directory")
        cfg.resolve_precision()
    out = _start_folder(cfg)
    t0 = time.monotonic()
    notes: list[str] = []
    say(f"labspin demo: 3 simulated devices, {cfg.cycles} cycles each"
        + (f", ResNet-18 on {cfg.subset or 'all 10,000'} CIFAR-10 test images ({cfg.precision})"
           if cfg.evaluates else "")
        + f"; expected about {_about(expected_seconds(cfg))} on 2 CPU cores"
        + ("; resuming the folder's finished parts" if cfg.resume else ""))

    say("[1/4] measuring on the simulated bench")
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    staircases, loops = {}, {}
    for device, recipe_name in DEVICES.items():
        staircases[device] = _measure(device, recipe_name, cfg, runs_dir, say, {"cycles": cfg.cycles})
        loops[device] = _measure(device, "loop", cfg, runs_dir, say, {"cycles": 2})

    say("[2/4] analysing: states, CTC, loops; exporting level tables")
    analyses = {d: analyze_run(p) for d, p in staircases.items()}
    loop_analyses = {d: analyze_run(p) for d, p in loops.items()}
    rewrite = cfg.overwrite or cfg.resume            # derived files: rebuilt from the run files
    write_report(list(analyses.values()) + list(loop_analyses.values()), out / "analysis",
                 overwrite=rewrite)
    levels_dir = out / "levels"
    levels_dir.mkdir(exist_ok=True)
    tables = {}
    for device, a in analyses.items():
        table = a.level_table()
        table.save_json(levels_dir / f"{device}.json", overwrite=rewrite)
        table.save_csv(levels_dir / f"{device}.csv", overwrite=rewrite)
        tables[device] = table
    devices = compare_devices(list(analyses.values()))
    devices.insert(0, "device", [a.device.get("type", a.device_id) for a in analyses.values()])
    for key, col in (("ic_plus", "ic_plus"), ("ic_minus", "ic_minus")):
        devices[col] = [((loop_analyses[d].loop or {}).get(key) or {}).get("mean") for d in analyses]
    devices["ctc_without_reset"] = [a.ctc_without_reset for a in analyses.values()]
    devices["levels_measured"] = [len(a.states) for a in analyses.values()]
    plot_device_comparison(list(analyses.values()), out / "devices.png")
    for d, a in analyses.items():
        say(f"  {d:<12} {a.distinguishable:>3} distinguishable of {len(a.states)} measured states   "
            f"CTC {a.ctc * 100:5.2f} % ({a.ctc_definition})"
            + ("" if a.ctc_without_reset is None else f", {a.ctc_without_reset * 100:5.2f} % without the reset state"))

    accuracy = None
    if cfg.evaluates:
        say("[3/4] evaluating the level tables as ResNet-18 weights (PTQ) on CIFAR-10")
        accuracy = _evaluate(tables, cfg, out, say)
    else:
        notes.append("accuracy not evaluated: give checkpoint (a ResNet-18 CIFAR-10 state_dict, "
                     "e.g. from labspin train) and data (CIFAR-10) to evaluate the level tables")
        say("[3/4] skipped: " + notes[-1])

    say("[4/4] writing the report")
    report = _write_report(out, cfg, devices, accuracy, notes, time.monotonic() - t0)
    say(f"report: {report}")
    return DemoResult(out, report, devices, accuracy, notes)


def _evaluate(tables: dict, cfg: DemoConfig, out: Path, say: Callable[[str], None]) -> pd.DataFrame:
    from labspin.quant.data import load_cifar10
    from labspin.quant.evaluate import evaluate_levels, plot

    data = load_cifar10(cfg.data, "test").subset(cfg.subset)
    acc_dir = out / "accuracy"
    acc_dir.mkdir(exist_ok=True)
    frames = []
    for device, table in tables.items():
        done = acc_dir / f"{device}.csv"
        if cfg.resume and done.is_file():       # written only once the device's grid finished
            say(f"  {device}: {len(table)} levels, evaluated before -> {done.name}")
            df = pd.read_csv(done)
        else:
            say(f"  {device}: all {len(table)} measured levels")
            common = dict(observers=("minmax", "mse"), noise=(False, True), trials=cfg.trials, seed=cfg.seed,
                          device=cfg.device, bf16=cfg.precision == "bf16", batch_size=EVAL_BATCH,
                          compile=not cfg.quick, progress=lambda m, d=device: say(f"    [3/4] {d}: {m}"))
            # the study's grid, one device per weight; then a device pair per weight (per channel)
            direct = evaluate_levels(cfg.checkpoint, table, data, granularities=("tensor", "channel"), **common)
            pair = evaluate_levels(cfg.checkpoint, table, data, granularities=("channel",),
                                   mapping="differential", **common)
            df = pd.concat([direct, pair[pair.config != "FP32"]], ignore_index=True)
            df.insert(0, "device", device)
            df.to_csv(done, index=False)
        # pd.concat drops attrs that differ between its inputs: say what the figure shows here
        df.attrs = {"levels": f"{device}'s {len(table)} measured levels", "k": len(table),
                    "images": int(df["images"].iloc[0])}
        plot(df, acc_dir / f"{device}.png")
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or pd.isna(v) else f"{v * 100:.{digits}f} %"


def _write_report(out: Path, cfg: DemoConfig, devices: pd.DataFrame, accuracy: pd.DataFrame | None,
                  notes: list[str], seconds: float) -> Path:
    lines = [
        "# labspin demo: three field-free SOT devices, side by side", "",
        f"labspin {__version__}; simulated bench, seed {cfg.seed}, {cfg.cycles} staircase cycles per "
        f"device; {'quick' if cfg.quick else 'full'} mode; {seconds:.0f} s.", "",
        "CTC: σ of R_H at each state across cycles ÷ window (R_max − R_min), averaged over states "
        "(`window` definition); states distinguishable when adjacent means are ≥ 5·(σ_a + σ_b)/2 apart. "
        "The reset state (step 0, driven into saturation every cycle) varies little more than the read "
        "noise, so the average is also given without it.",
        "", "## Devices", "",
        "| device | distinguishable states | measured states (levels evaluated) | CTC | CTC without reset state "
        "| window (Ω) | I_c+ (mA) | I_c− (mA) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in devices.itertuples():
        ic = [f"{v * 1e3:.2f}" if v is not None and pd.notna(v) else "–" for v in (r.ic_plus, r.ic_minus)]
        lines.append(f"| {r.device} | {r.states:.0f} | {r.levels_measured} | {_pct(r.ctc)} | "
                     f"{_pct(r.ctc_without_reset)} | {r.window:.4g} | {ic[0]} | {ic[1]} |")
    lines += ["", f"Reference study, tilted device: **{STUDY['tilted']['states']} states, "
              f"{STUDY['tilted']['ctc'] * 100:.0f} % CTC**.", "", "![devices](devices.png)", "",
              "Per-run figures and tables: [analysis/report.md](analysis/report.md); level tables in "
              "`levels/` (JSON `labspin-levels/1` and NeuroSim `states,mean,std` CSV).", ""]
    if accuracy is not None:
        # the guard's reason per row, '' when healthy (a device's CSV read back on resume gives NaN)
        accuracy = accuracy.assign(flag=accuracy.get("flag", pd.Series("", index=accuracy.index)).fillna(""))
        fp32 = accuracy[accuracy.config == "FP32"].groupby("device")["accuracy"].first()
        images = int(accuracy["images"].iloc[0])
        lines += ["## ResNet-18 on CIFAR-10 with the device levels as weights", "",
                  f"Post-training quantization of every conv and linear layer (BN folded) onto each "
                  f"device's measured levels; {images} test images; CTC-noise rows are the mean ± std of "
                  f"{cfg.trials} seeded programming trials. FP32 baseline: {fp32.iloc[0]:.2f} %. "
                  + ("Forward passes under bfloat16 autocast (weights and levels stay FP32; on the full "
                     "test set it moves accuracies by a few hundredths of a point, see the README; "
                     "`--precision fp32` for FP32 passes)." if cfg.precision == "bf16"
                     else "Forward passes in FP32."), "",
                  "Levels used: each device's evaluation programs the weights onto **all its measured "
                  "states** (its level table, each with its own σ as programming noise): "
                  + ", ".join(f"{r.device} {r.levels_measured} levels" for r in devices.itertuples())
                  + ". That is more than the distinguishable count above where adjacent states overlap "
                  "(k = 5): a weight level need not be told apart by one read, its noise is in the "
                  "CTC-noise rows.", ""]
        configs = [c for c in accuracy["config"].unique() if c != "FP32"]
        head = "| configuration | " + " | ".join(DEVICES) + " | study (tilted) |"
        lines += [head, "|" + "---|" * (len(DEVICES) + 2)]
        for c in configs:
            cells = []
            for d in DEVICES:
                r = accuracy[(accuracy.device == d) & (accuracy.config == c)]
                if r.empty:
                    cells.append("–")
                    continue
                r = r.iloc[0]
                pm = f" ± {r['std']:.2f}" if r["noise"] else ""
                warn = " ⚠" if r["flag"] else ""
                cells.append(f"{r['accuracy']:.2f}{pm} % (Δ {r['delta']:+.2f}){warn}")
            r0 = accuracy[accuracy.config == c].iloc[0]
            study = (None if r0["noise"] or c.startswith("differential")
                     else STUDY["accuracy"].get((r0["observer"], r0["granularity"])))
            lines.append(f"| {c} | " + " | ".join(cells) + f" | {study if study else '–'} |")
        flagged = [f"- ⚠ {r.device}, {r.config}: {r.flag}" for r in accuracy.itertuples() if r.flag]
        if flagged:
            lines += ["", "⚠ the evaluator's guard: top-1 agreement with FP32 below 90 % or Δ beyond 5 "
                      "points — do not read these as the device's accuracy; the likely cause:", ""] + flagged
        lines += ["", "Δ: points against the FP32 accuracy of the same checkpoint on the same images. "
                  "The study's baseline was ~82 %, ours is the shared checkpoint's. *Differential*: each "
                  "weight on a device pair (G+ − G−, the idle device at the lowest level), giving 2K − 1 "
                  "signed levels with both devices' CTC noise.", ""]
        lines += [f"![{d}](accuracy/{d}.png)" for d in DEVICES] + [""]
        accuracy.to_csv(out / "accuracy.csv", index=False)
    for n in notes:
        lines += [f"> {n}", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    summary = {"labspin_version": __version__, "quick": cfg.quick, "seed": cfg.seed, "cycles": cfg.cycles,
               "precision": cfg.precision if accuracy is not None else None,
               "devices": json.loads(devices.to_json(orient="records")),
               "accuracy": None if accuracy is None else json.loads(accuracy.to_json(orient="records")),
               "notes": notes}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return report
