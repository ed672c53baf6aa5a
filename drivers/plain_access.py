"""pymeasure's SourceMeter and lock-in classes as labspin opens them: plain attribute access.

pymeasure's `CommonBase.__getattribute__` guards the reserved names of dynamic properties with a
hasattr() that re-enters it: three Python calls for every attribute read, a large part of a
read's host time on the simulator (`benchmarks/bench_drivers.py`). These classes have no dynamic
property, hence no reserved name (tests/test_drivers_protocol.py holds that), so plain access is
exact. Everything else is pymeasure's class unchanged.
"""
from __future__ import annotations

from pymeasure.instruments import keithley, srs


class Keithley2400(keithley.Keithley2400):
    __getattribute__ = object.__getattribute__


class Keithley2450(keithley.Keithley2450):
    __getattribute__ = object.__getattribute__


class SR830(srs.SR830):
    __getattribute__ = object.__getattribute__


class SR860(srs.SR860):
    __getattribute__ = object.__getattribute__
