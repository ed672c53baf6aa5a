"""The station: which instruments are on the bench, which role each plays, the sample and its limits.

A station file is TOML (SI units)::

    name = "bench-2"                         # optional
    description = "6221 + 2182A, probe station B"   # optional

    [sample]
    id = "D17-3"                             # required (optional with [simulator]: the preset's)
    type = "tilted"                          # optional, free text (orange_peel | idmi | tilted | ...)
    width = 10e-6                            # m, required: current-carrying channel width
    thickness = 5e-9                         # m, required: current-carrying layer thickness
    length = 40e-6                           # m, optional
    r_xx = 1500.0                            # ohm, optional: channel resistance (energy, compliance)
    notes = "..."                            # optional

    [limits]                                 # all optional; defaults from drivers.roles.Limits
    max_pulse_current = 0.015                # A
    max_read_current = 1e-3                  # A
    compliance_voltage = 10.0                # V
    min_pulse_width = 50e-6                  # s
    max_pulse_width = 12e-3                  # s
    min_smu_pulse_width = 5e-3               # s, software-timed 2400/2450 pulses (bus latency)

    [instruments.k6221]                      # one table per instrument, any name
    driver = "keithley6221"                  # a labspin.drivers.registry entry
    address = "GPIB0::12::INSTR"             # a VISA resource name, or "sim" (with [simulator])
    options = { timeout = 5000 }             # optional, passed to the instrument class

    [roles]
    pulse_source = "k6221"                   # a keithley6221 (Pulse Delta) or a 2400/2450
    hall_reader = { mode = "dc_delta", instrument = "k6221" }
    # mode = "dc_delta" (a 6221 with the 2182A on its RS-232 link) | "pulse_delta" (the
    # pulse-source 6221 with its 2182A: reads are Pulse Delta pulses, and runs of steps go out as
    # one hardware-timed list sweep) | "lockin" (sr830/sr860; needs series_resistance, ohm) |
    # "sourcemeter" (2400/2450)

    [simulator]                              # optional: the whole bench is simulated
    device = "tilted:1"                      # preset[:seed]
    line_frequency = 50                      # Hz, 50 or 60
    faults = [{ instrument = "k6221", kind = "timeout", after = 40 }]   # optional

Modules, one concern each: `spec` (the validated description), `parse` (station files),
`sim` (`--sim` stations), `factory` (opening: bench, instruments, checks, roles), `live` (`Station`).
"""
from labspin.drivers.roles import Limits
from labspin.station.factory import check_station, make_bench, open_station
from labspin.station.live import Station
from labspin.station.parse import check_address, driver_names, load_station_spec, parse_station_spec
from labspin.station.sim import (SIM_HALL_MODES, check_hall_mode_use, check_sim_hall_mode,
                                 parse_sim_spec, preset_sample, sim_station_spec)
from labspin.station.spec import (SIM_ADDRESS, Fault, HallReaderSpec, InstrumentSpec, SimulatorSpec,
                                  StationSpec)


def __getattr__(name: str):
    if name == "DRIVER_NAMES":           # live: includes instruments registered after import
        return driver_names()
    raise AttributeError(name)


__all__ = ["Limits", "Station", "StationSpec", "InstrumentSpec", "HallReaderSpec", "SimulatorSpec",
           "Fault", "SIM_ADDRESS", "SIM_HALL_MODES", "load_station_spec", "parse_station_spec",
           "sim_station_spec", "parse_sim_spec", "preset_sample", "check_hall_mode_use",
           "check_sim_hall_mode", "check_address", "open_station", "check_station", "make_bench",
           "DRIVER_NAMES"]
