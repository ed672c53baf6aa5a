"""Endurance-length schedules: the schedule streams, and its checks and counts cost the same for
10 or 10⁹ pulses; the per-segment arithmetic agrees with the materialised arrays."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from labspin.drivers.roles import Limits
from labspin.dryrun import dry_run
from labspin.errors import UserError
from labspin.protocols import load_recipe
from labspin.protocols.base import STEP_FIELDS
from labspin.runner import check_schedule
from labspin.station import sim_station_spec

def row(step) -> tuple:
    return tuple(getattr(step, k) for k in STEP_FIELDS)


SMALL = [("potdep", {"cycles": 3, "pulses": 4}), ("loop", {"cycles": 2, "current_steps": 3}),
         ("staircase", {"cycles": 3}), ("retention", {"reads": 5})]


@pytest.mark.parametrize("name, overrides", SMALL)
def test_streamed_steps_and_counts_equal_the_arrays(name, overrides):
    p = load_recipe(name, overrides=overrides).protocol
    a = p.arrays()
    rows = list(zip(*(a[k].tolist() for k in STEP_FIELDS)))
    assert [row(s) for s in p.steps()] == [tuple(r) for r in rows]
    for start in (0, 1, len(p) // 2, len(p) - 1, len(p)):
        assert [row(s) for s in p.steps(start)] == [tuple(r) for r in rows[start:]]
    pulsed = a["pulse_current"] != 0
    assert len(p) == len(a["cycle"]) and p.n_pulses == int(pulsed.sum())
    assert p.n_cycles == int(a["cycle"].max()) + 1
    assert p.duration(0.1) == pytest.approx(a["pulse_width"].sum() + a["wait"].sum() + 0.1 * len(p))
    assert p.energy(100.0) == pytest.approx(np.sum(a["pulse_current"] ** 2 * a["pulse_width"]) * 100.0)
    if pulsed.any():
        assert p.pulse_width_range() == (a["pulse_width"][pulsed].min(), a["pulse_width"][pulsed].max())


def test_billion_pulse_schedule_is_checked_and_counted_without_materialising():
    r = load_recipe("potdep", overrides={"cycles": 10_000_000})       # 100 pulses per cycle
    p = r.protocol
    tracemalloc.start()
    s = dry_run(r, sim_station_spec("tilted"))
    check_schedule(r, Limits())
    tail = list(p.steps(len(p) - 3))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6                                    # a materialised column alone is 8 GB
    assert s.points == s.pulses == 10**9 and s.cycles == 10**7 and s.ok
    assert s.duration == pytest.approx(10**9 * (100e-6 + s.overhead))
    assert [(t.cycle, t.step) for t in tail] == [(10**7 - 1, 97), (10**7 - 1, 98), (10**7 - 1, 99)]
    assert tail[-1].pulse_current == pytest.approx(-6.2e-3)


def test_limit_check_still_finds_the_one_bad_pulse():
    r = load_recipe("staircase", overrides={"cycles": 1_000_000})
    with pytest.raises(UserError, match="max_pulse_current"):
        check_schedule(r, Limits(max_pulse_current=0.009))
    check_schedule(r, Limits(max_pulse_current=0.0097))
    # resumed past the reset of the last cycle: the remaining rungs still need checking
    with pytest.raises(UserError, match="max_pulse_current"):
        check_schedule(r, Limits(max_pulse_current=0.006), start_index=len(r.protocol) - 2)
