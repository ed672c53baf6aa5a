"""The simulated bench as a station: `--sim PRESET[:SEED]` and the sample a preset describes."""
from __future__ import annotations

import json

from labspin.drivers.roles import Limits
from labspin.errors import FieldError
from labspin.station.spec import HallReaderSpec, InstrumentSpec, SimulatorSpec, StationSpec


def parse_sim_spec(spec: str) -> tuple[str, int]:
    """"tilted" or "tilted:SEED" -> (preset, seed); UserError on a malformed seed."""
    if not isinstance(spec, str) or not spec.strip():
        raise FieldError("sim", f"expected PRESET or PRESET:SEED, got {spec!r}")
    preset_name, _, seed_text = spec.strip().partition(":")
    seed = 0
    if seed_text:
        try:
            seed = int(seed_text)
        except ValueError:
            raise FieldError("sim", f"{spec}: seed must be a non-negative integer, got {seed_text!r}") from None
        if seed < 0:
            raise FieldError("sim", f"{spec}: seed must be a non-negative integer, got {seed}")
    return preset_name, seed


SIM_HALL_MODES = ("dc_delta", "pulse_delta")     # what a --sim bench (6221 + 2182A) can read with


def check_hall_mode_use(station_file: str | None, hall_mode: str | None) -> None:
    """`--hall-mode` chooses how the simulated bench reads; a station file names its own mode."""
    if station_file and hall_mode is not None:
        raise FieldError("hall_mode", "only with a simulated bench (a station file names its hall_reader mode)")


def check_sim_hall_mode(hall_mode: str) -> None:
    """UserError unless ``hall_mode`` is a Hall-read mode of the simulated bench."""
    if hall_mode not in SIM_HALL_MODES:
        raise FieldError("hall_mode", f"{hall_mode!r} is not a mode of the simulated bench "
                         f"(one of: {', '.join(SIM_HALL_MODES)}; a station file with a [simulator] "
                         f"table reads in any mode)")


def preset_sample(preset_name: str, seed: int) -> dict:
    """The sample a preset describes: geometry, R_xx, the full parameter set and the seed
    (what DESIGN §3.3 puts under /entry/sample). UserError on an unknown preset."""
    from labspin.device_file import resolve_device

    p = resolve_device(preset_name).to_dict()     # a preset or a device file (labspin fit)
    sample = {
        "id": f"sim-{preset_name}-{seed}",
        "type": preset_name,
        "width": float(p["width"]),
        "thickness": float(p["thickness"]),
        "simulated": True,
        "preset": preset_name,
        "seed": seed,
        "params": p,
    }
    for key in ("length", "R_xx"):
        if key in p:
            sample["r_xx" if key == "R_xx" else key] = float(p[key])
    return json.loads(json.dumps(sample, default=str))


def sim_station_spec(spec: str, limits: Limits | None = None, *,
                     hall_mode: str = "dc_delta") -> StationSpec:
    """A simulated bench: a 6221 (pulse source; Hall reads in `hall_mode`, "dc_delta" or
    "pulse_delta", through the 2182A on its RS-232 link) on a `SimBench(preset, seed)`.

    No bench is built until `open()`.
    """
    check_sim_hall_mode(hall_mode)
    preset_name, seed = parse_sim_spec(spec)
    sample = preset_sample(preset_name, seed)
    instruments = {"k6221": InstrumentSpec("keithley6221", "sim")}
    return StationSpec(name=f"sim:{preset_name}:{seed}", sample=sample,
                       limits=limits if limits is not None else Limits(), instruments=instruments,
                       pulse_source="k6221", hall_reader=HallReaderSpec(hall_mode, "k6221"),
                       description=f"simulated bench, preset {preset_name!r}, seed {seed}",
                       simulator=SimulatorSpec(preset_name, seed))
