"""labspin.formatting: the one rule for numbers on every screen (CLI, GUI, reports)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from labspin import formatting as f


@pytest.mark.parametrize("value, unit, text", [
    (0.0075, "A", "7.5 mA"), (-9.64e-3, "A", "-9.64 mA"), (200e-6, "s", "200 µs"), (8e-3, "A", "8 mA"),
    (1.0, "s", "1 s"), (20.0, "V", "20 V"), (1.5e3, "ohm", "1.5 kohm"), (2.5e-15, "J", "2.5 fJ"),
    (0.0, "A", "0 A"), (math.inf, "s", "inf s"), (np.float64(1e-9), "s", "1 ns"),
    # a value that rounds up to 1000 at 3 digits takes the next prefix
    (0.99996, "A", "1 A"), (999.6e-6, "A", "1 mA"), (999.4e-6, "A", "999 µA"),
])
def test_si_prefixes_and_rounding(value, unit, text):
    assert f.si(value, unit) == text


@pytest.mark.parametrize("missing", [None, math.nan, np.float32("nan")])
def test_missing_values_read_as_missing_not_zero(missing):
    assert f.si(missing, "A") == f.MISSING
    assert f.quantity(missing, "ohm") == f.MISSING
    assert f.number(missing) == f.MISSING
    assert f.clock(missing) == "--:--"


def test_quantity_and_number_keep_their_precision():
    assert f.quantity(1234.56789, "ohm") == "1234.57 ohm"
    assert f.quantity(math.inf, "s") == f.MISSING
    assert f.number(0.0123456) == "0.01235"
    assert f.number(np.float32(2.5)) == "2.5"
    assert f.number(7) == "7" and f.number("dev-A") == "dev-A"


@pytest.mark.parametrize("seconds, text", [
    (0, "0:00"), (42.4, "0:42"), (59.6, "1:00"), (725, "12:05"), (3723, "1:02:03"), (-3, "0:00"),
    (math.inf, "--:--"),
])
def test_clock(seconds, text):
    assert f.clock(seconds) == text


@pytest.mark.parametrize("seconds, text", [
    (0.25, "0.25 s"), (42.46, "42.5 s"), (185, "3m05s"), (3723, "1h02m03s"), (math.inf, "inf s"),
])
def test_duration(seconds, text):
    assert f.duration(seconds) == text
