"""`labspin sweep`: a grid of simulated runs (or of evaluator configurations) on Dask distributed, one result file per task.

SWEEP.toml::

    name = "d2d"                              # required
    recipe = "staircase"                      # a shipped name or a path (relative to SWEEP.toml)
    devices = ["tilted"]                      # simulator presets
    seeds = [0, 1, 2]                         # or { start = 0, count = 64 }
    hall_mode = "dc_delta"                    # optional: dc_delta | pulse_delta
    [parameters]                              # optional: recipe overrides, each a list = a grid axis
    cycles = [20]
    pulse_width = ["100 us", "200 us"]
    [analysis]                                # optional: labspin.analysis settings
    ctc = "window"                            # window | state
    k = 5.0

or, to evaluate level tables instead of measuring (the evaluator grid)::

    name = "eval-grid"
    [evaluate]
    levels = ["tilted:0", "tilted:1", "uniform:11", "my.levels.json"]   # simulated device
                                              # PRESET:SEED (a staircase measured first: recipe,
                                              # cycles), ideal uniform:K, or a level file
    observers = ["minmax", "mse"]             # labspin evaluate --observer values
    granularity = ["tensor", "channel"]
    noise_trials = [0, 5]                     # 0: no programming noise; N: CTC noise, N trials
    subset = 500                              # optional: first test images (default: all)
    checkpoint = "..."                        # optional: else env LABSPIN_CHECKPOINT
    data = "..."                              # optional: else env LABSPIN_DATA
    seed = 0                                  # optional: root seed of the noise trials
    recipe = "staircase"                      # optional: what a simulated device measures
    cycles = 20                               # optional: its cycles

Evaluator tasks are the product levels × observers × granularity × noise_trials; a simulated
device is measured once (``OUT/levels/<device>.json``) before the evaluations that use it.

Tasks are the product devices × seeds × parameter values. Task `<id>` writes
``OUT/runs/<id>.h5`` and ``OUT/results/<id>.json``; a task whose result file exists is not run
again (a re-run resumes the sweep). A failing task is recorded with its error (one line) and does
not stop the others. At the end ``results.csv``, ``results.parquet`` and ``report.md`` gather
all results. Runs on an embedded ``LocalCluster`` (``workers`` processes, one thread each) or on
the scheduler at ``scheduler``.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from labspin.errors import FieldError, UserError

TOP_KEYS = ("name", "description", "recipe", "devices", "seeds", "hall_mode", "parameters", "analysis",
            "evaluate")
MEASURE_KEYS = ("recipe", "devices", "seeds", "hall_mode", "parameters", "analysis")
EVAL_KEYS = ("levels", "observers", "granularity", "noise_trials", "subset", "checkpoint", "data",
             "seed", "recipe", "cycles")


@dataclass(frozen=True)
class Task:
    id: str
    recipe: str
    device: str
    seed: int
    overrides: dict
    hall_mode: str
    analysis: dict
    kind: str = "measure"                 # "measure" | "levels" (a simulated device's level table)
                                          # | "evaluate" (one evaluator configuration)
    evaluate: dict = field(default_factory=dict)


@dataclass
class Sweep:
    name: str
    tasks: list[Task]
    source: str
    description: str = ""
    axes: dict = field(default_factory=dict)


def _list(value: Any, where: str) -> list:
    if isinstance(value, list):
        if not value:
            raise UserError(f"{where}: must not be empty")
        return value
    return [value]


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Validate SWEEP.toml (and every task's recipe, overrides and device) before anything runs."""
    from labspin.protocols.recipe import load_recipe
    from labspin.station import sim_station_spec

    p = Path(path)
    src = str(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{src}: no such sweep file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{src}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{src}: invalid TOML: {exc}") from None
    for key in doc:
        if key not in TOP_KEYS:
            raise UserError(f"{src}: {key}: unknown key (allowed: {', '.join(TOP_KEYS)})")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{src}: name: expected a non-empty string, got {name!r}")
    if "evaluate" in doc:
        both = [k for k in MEASURE_KEYS if k in doc]
        if both:
            raise UserError(f"{src}: {both[0]}: a sweep either measures (recipe, devices, ...) or "
                            f"evaluates ([evaluate]), not both")
        return _eval_sweep(doc["evaluate"], p, src, name, str(doc.get("description", "")))
    recipe = doc.get("recipe")
    if not isinstance(recipe, str) or not recipe:
        raise UserError(f"{src}: recipe: expected a shipped recipe name or a path, got {recipe!r}")
    if (p.parent / recipe).is_file():
        recipe = str((p.parent / recipe).resolve())
    devices = _list(doc.get("devices", "tilted"), f"{src}: devices")
    seeds = doc.get("seeds", [0])
    if isinstance(seeds, dict):
        start, count = seeds.get("start", 0), seeds.get("count")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, count)) \
                or start < 0 or not 1 <= count <= 100_000 or set(seeds) - {"start", "count"}:
            raise UserError(f"{src}: seeds: expected {{start = N >= 0, count = 1..100000}}, got {seeds!r}")
        seeds = list(range(start, start + count))
    seeds = _list(seeds, f"{src}: seeds")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise UserError(f"{src}: seeds: expected non-negative integers, got {s!r}")
    hall_mode = doc.get("hall_mode", "dc_delta")
    if hall_mode not in ("dc_delta", "pulse_delta"):
        raise UserError(f"{src}: hall_mode: expected dc_delta or pulse_delta, got {hall_mode!r}")
    params = doc.get("parameters", {})
    if not isinstance(params, dict):
        raise UserError(f"{src}: parameters: expected a table, got {params!r}")
    axes = {k: _list(v, f"{src}: parameters.{k}") for k, v in params.items()}
    analysis = doc.get("analysis", {})
    if not isinstance(analysis, dict) or set(analysis) - {"ctc", "k"}:
        raise UserError(f"{src}: analysis: expected a table with ctc and/or k, got {analysis!r}")
    if analysis.get("ctc", "window") not in ("window", "state"):
        raise UserError(f"{src}: analysis.ctc: expected window or state, got {analysis['ctc']!r}")
    k = analysis.get("k", 5.0)
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k <= 0:
        raise UserError(f"{src}: analysis.k: expected a positive number, got {k!r}")
    for d in devices:
        if not isinstance(d, str):
            raise UserError(f"{src}: devices: expected preset names, got {d!r}")
        sim_station_spec(f"{d}:0")                  # UserError naming an unknown preset
    tasks = []
    keys = list(axes)
    for combo in itertools.product(*(axes[k] for k in keys)):
        overrides = dict(zip(keys, combo))
        try:
            load_recipe(recipe, overrides or None)      # every grid point validated up front
        except UserError as exc:
            raise UserError(f"{src}: parameters {overrides}: {exc}") from None
        for d in devices:
            for s in seeds:
                tag = "-".join(f"{k}={_tag(v)}" for k, v in overrides.items())
                tid = f"{d}-s{s}" + (f"-{tag}" if tag else "")
                tasks.append(Task(tid, recipe, d, int(s), overrides, hall_mode, dict(analysis)))
    return Sweep(name=name, tasks=tasks, source=src, description=str(doc.get("description", "")),
                 axes=axes)


def _eval_sweep(ev: Any, p: Path, src: str, name: str, description: str) -> Sweep:
    """The evaluator grid: levels × observers × granularity × noise_trials, validated up front."""
    from labspin.levels import load_levels
    from labspin.protocols.recipe import load_recipe
    from labspin.quant.evaluate import GRANULARITIES, observer_choices
    from labspin.sim_backend.physics import PRESETS

    if not isinstance(ev, dict):
        raise UserError(f"{src}: evaluate: expected a table, got {ev!r}")
    for key in ev:
        if key not in EVAL_KEYS:
            raise UserError(f"{src}: evaluate.{key}: unknown key (allowed: {', '.join(EVAL_KEYS)})")
    if "levels" not in ev:
        raise UserError(f"{src}: evaluate.levels: missing (required)")

    def choices(key: str, allowed: tuple, default: list) -> list:
        values = _list(ev.get(key, default), f"{src}: evaluate.{key}")
        for v in values:
            if v not in allowed:
                raise UserError(f"{src}: evaluate.{key}: {v!r} is not one of {', '.join(allowed)}")
        return values

    def count(key: str, default: Any, low: int) -> Any:
        v = ev.get(key, default)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise UserError(f"{src}: evaluate.{key}: expected an integer >= {low}, got {v!r}")
        return v

    observers = choices("observers", observer_choices(), ["minmax", "mse"])
    grans = choices("granularity", tuple(GRANULARITIES), ["tensor", "channel"])
    trials = _list(ev.get("noise_trials", [0]), f"{src}: evaluate.noise_trials")
    for t in trials:
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise UserError(f"{src}: evaluate.noise_trials: expected integers >= 0, got {t!r}")
    common = {"subset": count("subset", None, 1), "seed": count("seed", 0, 0),
              "recipe": ev.get("recipe", "staircase"), "cycles": count("cycles", 20, 1)}
    for key in ("checkpoint", "data"):
        v = ev.get(key)
        if v is not None:
            if not isinstance(v, str) or not v:
                raise UserError(f"{src}: evaluate.{key}: expected a path, got {v!r}")
            v = str((p.parent / v).resolve()) if not os.path.isabs(v) else v
        common[key] = v
    recipe = common["recipe"]
    if not isinstance(recipe, str) or not recipe:
        raise UserError(f"{src}: evaluate.recipe: expected a recipe name or path, got {recipe!r}")
    if (p.parent / recipe).is_file():
        common["recipe"] = str((p.parent / recipe).resolve())
    sources = []
    for lv in _list(ev["levels"], f"{src}: evaluate.levels"):
        if not isinstance(lv, str) or not lv:
            raise UserError(f"{src}: evaluate.levels: expected strings, got {lv!r}")
        head, _, tail = lv.partition(":")
        if head == "uniform":
            if not tail.isdigit() or int(tail) < 2:
                raise UserError(f"{src}: evaluate.levels: {lv!r}: uniform:K needs K >= 2")
            sources.append(("uniform", lv, int(tail)))
        elif head in PRESETS:
            if not tail.isdigit():
                raise UserError(f"{src}: evaluate.levels: {lv!r}: a simulated device is PRESET:SEED")
            sources.append(("sim", lv, (head, int(tail))))
        else:
            path = (p.parent / lv).resolve()
            if not path.is_file():
                raise UserError(f"{src}: evaluate.levels: {lv!r}: no such level file, preset "
                                f"({', '.join(PRESETS)}) or uniform:K")
            load_levels(path)                        # a bad table: one line now, not per task
            sources.append(("file", lv, str(path)))
    if any(kind == "sim" for kind, _, _ in sources):
        load_recipe(common["recipe"], {"cycles": common["cycles"]})
    tasks = []
    for kind, label, value in sources:
        tag = _tag(label)
        if kind == "sim":
            tasks.append(Task(f"levels-{tag}", common["recipe"], value[0], value[1],
                              {"cycles": common["cycles"]}, "dc_delta", {}, kind="levels"))
        for obs, gran, n in itertools.product(observers, grans, trials):
            spec = {**common, "levels": label, "source": kind, "value": value, "observer": obs,
                    "granularity": gran, "noise_trials": n}
            tasks.append(Task(f"{tag}-{obs}-{gran}-n{n}", common["recipe"],
                              value[0] if kind == "sim" else "", value[1] if kind == "sim" else 0,
                              {}, "dc_delta", {}, kind="evaluate", evaluate=spec))
    axes = {"levels": [lbl for _, lbl, _ in sources], "observers": observers, "granularity": grans,
            "noise_trials": trials}
    return Sweep(name=name, tasks=tasks, source=src, description=description, axes=axes)


def _tag(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return "".join(c if c.isalnum() or c in ".+" else "_" for c in text)[:40]


# --- one task, on a worker ---------------------------------------------------------------------

def run_task(task: Task, out: str) -> dict:
    """Measure and analyse one task; never raises: a failure is a row with its error."""
    if task.kind == "levels":
        return _levels_task(task, out)
    if task.kind == "evaluate":
        return _evaluate_task(task, out)
    row = {"task": task.id, "device": task.device, "seed": task.seed, **{f"param.{k}": json.dumps(v)
                                                                         for k, v in task.overrides.items()}}
    run_path = (Path(out) / "runs" / f"{task.id}.h5").resolve()
    try:
        from labspin import analysis
        from labspin.measure import measure
        from labspin.protocols.recipe import load_recipe
        from labspin.station import sim_station_spec

        rec = load_recipe(task.recipe, task.overrides or None)
        spec = sim_station_spec(f"{task.device}:{task.seed}", hall_mode=task.hall_mode)
        status, _ = measure(rec, spec, run_path, overwrite=True)
        a = analysis.analyze_run(str(run_path), ctc_definition=task.analysis.get("ctc", "window"),
                                 k=float(task.analysis.get("k", 5.0)))
        s = a.summary()
        means = [st["mean"] for st in s["states"]]
        loop = s.get("loop") or {}
        row.update(status=status, error=s["error"] or "", run=str(run_path), points=s["points_analysed"],
                   n_states=s["n_states"], distinguishable=s["distinguishable_states"], ctc=s["ctc"],
                   window=(s["window"] or {}).get("window"), r_min=(s["window"] or {}).get("r_min"),
                   r_max=(s["window"] or {}).get("r_max"),
                   state_means=json.dumps(means),
                   ic_plus=(loop.get("ic_plus") or {}).get("mean") if isinstance(loop.get("ic_plus"), dict) else loop.get("ic_plus"),
                   ic_minus=(loop.get("ic_minus") or {}).get("mean") if isinstance(loop.get("ic_minus"), dict) else loop.get("ic_minus"))
    except BaseException as exc:        # noqa: BLE001 - a task's failure is data, not a crash
        text = " ".join(str(exc).split()) or type(exc).__name__
        row.update(status="failed", error=f"{type(exc).__name__}: {text}"[:500])
    return row


def _failed(row: dict, exc: BaseException) -> dict:
    text = " ".join(str(exc).split()) or type(exc).__name__
    row.update(status="failed", error=f"{type(exc).__name__}: {text}"[:500])
    return row


def _levels_path(out: str, device: str, seed: int) -> Path:
    return Path(out) / "levels" / f"{device}-s{seed}.json"


def _levels_task(task: Task, out: str) -> dict:
    """A simulated device's staircase, analysed into its level table (OUT/levels/)."""
    row = {"task": task.id, "kind": "levels", "device": task.device, "seed": task.seed}
    run_path = (Path(out) / "runs" / f"{task.id}.h5").resolve()
    try:
        from labspin.analysis import analyze_run
        from labspin.measure import measure
        from labspin.protocols.recipe import load_recipe
        from labspin.station import sim_station_spec

        rec = load_recipe(task.recipe, task.overrides)
        status, _ = measure(rec, sim_station_spec(f"{task.device}:{task.seed}"), run_path, overwrite=True)
        table = analyze_run(str(run_path)).level_table()
        path = _levels_path(out, task.device, task.seed)
        path.parent.mkdir(exist_ok=True)
        table.save_json(path, overwrite=True)
        row.update(status=status, error="", run=str(run_path), levels_file=str(path),
                   n_levels=len(table))
    except BaseException as exc:        # noqa: BLE001 - a task's failure is data, not a crash
        _failed(row, exc)
    return row


def _evaluate_task(task: Task, out: str) -> dict:
    """One evaluator configuration on one level source; the accuracy against FP32."""
    e = task.evaluate
    row = {"task": task.id, "kind": "evaluate", "levels": e["levels"], "observer": e["observer"],
           "granularity": e["granularity"], "noise_trials": e["noise_trials"]}
    try:
        from labspin.quant.evaluate import evaluate_levels

        checkpoint = e["checkpoint"] or os.environ.get("LABSPIN_CHECKPOINT")
        data = e["data"] or os.environ.get("LABSPIN_DATA")
        if not checkpoint or not data:
            raise UserError("evaluate.checkpoint / evaluate.data: not given in the sweep file nor in "
                            "env LABSPIN_CHECKPOINT / LABSPIN_DATA")
        if e["source"] == "sim":
            path = _levels_path(out, task.device, task.seed)
            if not path.is_file():
                raise UserError(f"{path}: the simulated device's level table was not measured "
                                f"(see task levels-{_tag(e['levels'])})")
            levels: Any = str(path)
        else:
            levels = e["value"]
        n = int(e["noise_trials"])
        df = evaluate_levels(checkpoint, levels, data, observers=e["observer"],
                             granularities=e["granularity"], noise=n > 0, trials=max(n, 1),
                             subset=e["subset"], seed=e["seed"])
        fp32 = df[df["config"] == "FP32"].iloc[0]
        q = df[df["config"] != "FP32"].iloc[0]
        row.update(status="completed", error="", n_levels=int(df.attrs.get("k", 0)) or None,
                   fp32=float(fp32["accuracy"]), accuracy=float(q["accuracy"]),
                   accuracy_std=float(q["std"]), delta=float(q["delta"]), ci95=float(q["ci95"]),
                   flag=str(q.get("flag", "") or ""), images=int(q["images"]))
    except BaseException as exc:        # noqa: BLE001 - a task's failure is data, not a crash
        _failed(row, exc)
    return row


# --- the sweep -------------------------------------------------------------------------------

def run_sweep(sweep: Sweep, out: str | os.PathLike, *, workers: int = 2, scheduler: str | None = None,
              progress: bool = True, on_result: Callable[[dict], None] | None = None) -> pd.DataFrame:
    """Run every unfinished task on Dask; gather results.csv/.parquet and report.md in `out`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    todo = [t for t in sweep.tasks if not (out / "results" / f"{t.id}.json").is_file()]
    # level tables of simulated devices before the evaluations that read them
    phases = [[t for t in todo if t.kind == "levels"], [t for t in todo if t.kind != "levels"]]
    done = len(sweep.tasks) - len(todo)
    for phase in phases:
        if phase:
            _dispatch(phase, out, workers=workers, scheduler=scheduler, progress=progress,
                      total=len(sweep.tasks), done=done, on_result=on_result)
            done += len(phase)
    rows = [json.loads((out / "results" / f"{t.id}.json").read_text()) for t in sweep.tasks
            if (out / "results" / f"{t.id}.json").is_file()]
    table = pd.DataFrame(rows)
    table.to_csv(out / "results.csv", index=False)
    table.to_parquet(out / "results.parquet", index=False)
    (out / "report.md").write_text(report(sweep, table), encoding="utf-8")
    return table


def _dispatch(todo: list[Task], out: Path, *, workers: int, scheduler: str | None, progress: bool,
              total: int, done: int, on_result) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UserError("labspin sweep needs Dask distributed: pip install 'labspin[sweep]'") from None
    from tqdm import tqdm

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise FieldError("scheduler", f"{scheduler}: cannot connect ({exc})") from None
        cluster = None
    else:
        if workers < 1:
            raise FieldError("workers", f"must be >= 1, got {workers}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    bar = tqdm(total=total, initial=done, disable=not progress, unit="task", desc="sweep")
    try:
        futures = {client.submit(run_task, t, str(out), pure=False, key=f"labspin-{t.id}"): t for t in todo}
        for fut in as_completed(futures):
            t = futures[fut]
            try:
                row = fut.result()
            except BaseException as exc:   # noqa: BLE001 - a worker died: the task failed
                row = {"task": t.id, "device": t.device, "seed": t.seed, "status": "failed",
                       "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]}
            (out / "results" / f"{t.id}.json").write_text(json.dumps(row, default=str))
            if on_result is not None:
                on_result(row)
            bar.update(1)
            if row.get("status") == "failed":
                bar.write(f"task {t.id}: failed: {row.get('error')}")
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


def report(sweep: Sweep, table: pd.DataFrame) -> str:
    """Markdown: the grid, each device/parameter group's spread (or each evaluator configuration's
    accuracy), and every failure."""
    ok = table[table.get("status", pd.Series(dtype=str)) != "failed"] if len(table) else table
    evaluates = any(t.kind == "evaluate" for t in sweep.tasks)
    lines = [f"# Sweep {sweep.name}", "", sweep.description, "",
             f"{len(sweep.tasks)} tasks ({len(ok)} done, {len(table) - len(ok)} failed): "
             + (f"levels × observers × granularity × noise trials {sweep.axes}" if evaluates else
                f"devices × seeds × parameters {sweep.axes or '{}'}"), ""]
    metrics = [m for m in ("ctc", "window", "r_min", "r_max", "n_states", "distinguishable",
                           "ic_plus", "ic_minus") if m in ok and ok[m].notna().any()]
    if evaluates:
        lines += _accuracy_section(ok)
    elif len(ok) and metrics:
        group = ["device"] + [c for c in ok.columns if c.startswith("param.")]
        lines += ["## Spread across devices (mean ± std, min … max)", "",
                  "| " + " | ".join(group + ["n"] + metrics) + " |",
                  "|" + "---|" * (len(group) + 1 + len(metrics))]
        for key, g in ok.groupby(group, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            cells = [str(k) for k in key] + [str(len(g))]
            for m in metrics:
                v = pd.to_numeric(g[m], errors="coerce").dropna()
                cells.append("n/a" if v.empty else
                             f"{v.mean():.4g} ± {v.std(ddof=1) if len(v) > 1 else 0:.2g} "
                             f"({v.min():.4g} … {v.max():.4g})")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    failed = table[table["status"] == "failed"] if "status" in table else table.iloc[0:0]
    return _failures(lines, failed)


def _accuracy_section(ok: pd.DataFrame) -> list[str]:
    rows = ok[ok.get("kind", pd.Series(dtype=str)) == "evaluate"] if len(ok) else ok
    if not len(rows):
        return []
    fp32 = pd.to_numeric(rows["fp32"], errors="coerce").dropna()
    out = ["## Accuracy (ResNet-18, CIFAR-10)", "",
           f"FP32: {fp32.iloc[0]:.2f} % on {int(rows['images'].iloc[0])} images." if len(fp32) else "", "",
           "| levels | levels used | observer | granularity | noise trials | accuracy (%) | Δ vs FP32 | flag |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows.sort_values(["levels", "observer", "granularity", "noise_trials"]).itertuples():
        acc = f"{r.accuracy:.2f}" + (f" ± {r.accuracy_std:.2f}" if r.noise_trials else "")
        out.append(f"| {r.levels} | {'' if pd.isna(r.n_levels) else int(r.n_levels)} | {r.observer} | "
                   f"{r.granularity} | {r.noise_trials} | {acc} | {r.delta:+.2f} | {r.flag or ''} |")
    return out + [""]


def _failures(lines: list[str], failed: pd.DataFrame) -> str:
    if len(failed):
        lines += ["## Failed tasks", ""] + [f"- `{r.task}`: {r.error}" for r in failed.itertuples()]
    return "\n".join(lines) + "\n"
