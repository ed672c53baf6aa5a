"""Device physics of the simulated Hall bar: reproducibility, switching laws, presets' staircases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labspin.sim_backend.errors import SimulatorInputError
from labspin.sim_backend.physics import (
    PRESETS, DeviceParams, HallBar, HallBarBatch, preset, suggested_staircase,
)

WIDTH = 100e-6


# -- a small, independent state/CTC counter (the analysis module is not used here) ---------------

def count_states(R: np.ndarray, k: float = 5.0) -> tuple[int, float]:
    """R: (cycles, states). Returns (distinguishable states, window CTC)."""
    mu, sd = R.mean(axis=0), R.std(axis=0, ddof=1)
    order = np.argsort(mu)
    mu, sd = mu[order], sd[order]
    ctc = float(np.mean(sd / (R.max() - R.min())))
    n, last = 1, 0
    for i in range(1, mu.size):
        if mu[i] - mu[last] >= k * (sd[i] + sd[last]) / 2:
            n, last = n + 1, i
    return n, ctc


READ_EVERY = 0.05        # s between reads (a Delta read of a few PLC plus the pulse)


def staircase(hb: HallBar, adv: dict, cycles: int, read: bool = True) -> np.ndarray:
    """One reset pulse then the ladder, a read (noise, drift, read-back) after every pulse —
    or the noise-free R_H with read=False; (cycles, 1 + rungs)."""
    amps = adv["amplitudes"]
    R = np.empty((cycles, 1 + len(amps)))
    t = 0.0
    for c in range(cycles):
        for j, a in enumerate([adv["reset_current"]] + amps):
            hb.pulse(a, WIDTH)
            t += READ_EVERY
            R[c, j] = hb.read_resistance(t) if read else hb.hall_resistance
    return R


@pytest.fixture(scope="module")
def ladders() -> dict:
    sizes = {"tilted": 11, "idmi": 6, "orange_peel": 4}
    return {name: suggested_staircase(preset(name), n, WIDTH) for name, n in sizes.items()}


def random_trace(hb: HallBar, n: int = 300, rng_seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    amps = rng.uniform(-9e-3, 9e-3, n)
    out = []
    for a in amps:
        hb.pulse(float(a), WIDTH)
        out.append(hb.hall_resistance)
    return np.array(out)


# -- reproducibility -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_same_seed_identical_trace(name):
    a, b = HallBar(preset(name), seed=3), HallBar(preset(name), seed=3)
    ta, tb = random_trace(a), random_trace(b)
    assert np.array_equal(ta, tb)
    assert np.ptp(ta) > 0.5 * preset(name).R_AHE          # it did switch
    assert np.array_equal(a.readout_rng.random(4), b.readout_rng.random(4))
    assert not np.array_equal(ta, random_trace(HallBar(preset(name), seed=4)))


def test_reads_do_not_change_switching_history():
    a, b = HallBar(preset("idmi"), seed=1), HallBar(preset("idmi"), seed=1)
    b.readout_rng.normal(size=1000)                         # an instrument drawing read noise
    assert np.array_equal(random_trace(a), random_trace(b))


def test_different_seeds_same_statistics(ladders):
    p, adv = preset("tilted"), ladders["tilted"]
    R1 = staircase(HallBar(p, seed=11), adv, 120)
    R2 = staircase(HallBar(p, seed=12), adv, 120)
    # state means agree within a couple of cycle-to-cycle σ (devices differ only by fabrication
    # draws), spreads agree within ~50 % (the first rung's σ rests on a device's few weakest grains)
    sigma = R1.std(axis=0).mean()
    assert np.abs(R1.mean(axis=0) - R2.mean(axis=0)).max() < 2.5 * sigma
    s1, s2 = R1.std(axis=0)[1:], R2.std(axis=0)[1:]
    assert np.all(np.abs(np.log(s1 / s2)) < 0.5)
    assert not np.array_equal(R1, R2)


def test_save_restore_state_exact():
    hb = HallBar(preset("orange_peel"), seed=8)
    random_trace(hb, 100)
    hb.apply_inplane_field(-0.1)
    state = json.loads(json.dumps(hb.get_state()))         # JSON-able
    future = random_trace(hb, 200, rng_seed=9)
    noise = hb.readout_rng.normal(size=5)
    other = HallBar(preset("orange_peel"), seed=8)
    other.set_state(state)
    assert other.polarity == -1
    assert np.array_equal(random_trace(other, 200, rng_seed=9), future)
    assert np.array_equal(other.readout_rng.normal(size=5), noise)
    with pytest.raises(SimulatorInputError):
        HallBar(preset("orange_peel"), seed=9).set_state(state)
    with pytest.raises(SimulatorInputError):
        other.set_state({"format": "something else"})


# -- switching laws ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_no_switching_below_the_weakest_grains_threshold(name):
    """Below the current at which even the weakest grain (J_c0·e^(-3σ_g)) has a cumulative
    switching probability < 1e-4 over 50 pulses, nothing switches; at 1.5× the median switching
    current of the thermal-activation law everything does."""
    p = preset(name)
    hb = HallBar(p, seed=2)
    width, n = 10e-3, 50
    hb.pulse(-0.012, WIDTH)                                  # saturate low
    r0 = hb.hall_resistance
    # n·(t/τ0)·exp(-Δ·x) < 1e-4 with ±3σ_J of drive jitter on top
    x = (math.log(n * width / p.tau0) - math.log(1e-4)) / p.delta
    j_safe = p.J_c0 * math.exp(-3 * p.sigma_g) * (1 - x) / (1 + 3 * p.sigma_J) + p.J_shift
    assert j_safe > 0
    for _ in range(n):
        hb.pulse(j_safe * p.area, width)
    assert hb.hall_resistance == r0
    j_sw = p.J_c0 * (1 - math.log(width / p.tau0) / p.delta) + p.J_shift
    for _ in range(5):
        hb.pulse(1.5 * j_sw * p.area, width)
    assert hb.hall_resistance > r0 + p.R_AHE


def test_switching_current_linear_in_log_pulse_width():
    p = preset("tilted").replace(thermal_resistance=0.0, J_shift=0.0)   # isolate the law
    widths = np.geomspace(50e-6, 1.0, 6)
    j_sw = []
    for w in widths:
        lo, hi = 0.1 * p.J_c0 * p.area, 1.0 * p.J_c0 * p.area
        for it in range(14):
            mid = 0.5 * (lo + hi)
            b = HallBarBatch(p, 48, seed=it)
            b.pulse(-0.018, WIDTH)
            b.pulse(mid, w)
            frac = (b.magnetization.mean() + 1) / 2
            lo, hi = (mid, hi) if frac < 0.5 else (lo, mid)
        j_sw.append(0.5 * (lo + hi) / p.area)
    j_sw = np.array(j_sw)
    x = np.log(widths)
    slope, icpt = np.polyfit(x, j_sw, 1)
    fit = slope * x + icpt
    r2 = 1 - ((j_sw - fit) ** 2).sum() / ((j_sw - j_sw.mean()) ** 2).sum()
    assert slope < 0 and r2 > 0.99
    # J_sw ≈ J_c0·[1 - ln(t_p/τ0)/Δ]: slope -J_c0/Δ; half the units switch where
    # (t_p/τ0)·exp(-Δx) = ln 2, hence the ln ln 2 in the values (within a few per cent)
    assert slope == pytest.approx(-p.J_c0 / p.delta, rel=0.15)
    model = p.J_c0 * (1 - (np.log(widths / p.tau0) - math.log(math.log(2))) / p.delta)
    assert np.allclose(j_sw, model, rtol=0.04)


@pytest.mark.parametrize("n_exp", [1.0, 1.5])
def test_compiled_kernel_evaluates_the_shared_law(n_exp):
    """HallBar.pulse's compiled bin loop and switching.log_rate (used by pulse_train, the batch
    and the ladder design) are one law, to the last bit: with log_sure = -inf a bin switches
    entirely exactly when its ln rate exceeds log_cold, so a log_cold equal to a bin's ln rate
    must leave that bin alone and switch exactly the bins above it."""
    from labspin.sim_backend import switching
    from labspin.sim_backend.pulse_kernel import generator_handle, pulse_bins
    p = preset("tilted").replace(n_exp=n_exp, sigma_J=0.02)
    rng = np.random.default_rng(11)
    inv_jc = 1.0 / (p.J_c0 * np.exp(0.3 * rng.standard_normal(64)))
    sign, count = np.ones(64, dtype=np.int64), np.full(64, 3, dtype=np.int64)
    fn, st = generator_handle(rng)
    for current, width, eta in ((4.2e-3, 100e-6, 0.7), (-6.1e-3, 1e-3, -1.3), (3.0e-3, 50e-6, 0.0)):
        j = switching.shifted_density(p, current)
        jh, delta, ln_t = switching.pulse_terms(p, current, width, j, eta)
        lr = switching.log_rate(jh, inv_jc, delta, ln_t, p.n_exp)
        assert np.ptp(lr) > 5.0                      # bins spread over the law, not all alike
        for thr in lr[::4]:
            up = np.zeros(64, dtype=np.int64)
            dm = pulse_bins(fn, st, inv_jc, sign, count, up, 1, jh, delta, ln_t, p.n_exp, float(thr),
                            -math.inf)
            assert np.array_equal(up > 0, lr > thr) and dm == 2 * up.sum()


def test_joule_heating_lowers_switching_current():
    cold = preset("tilted").replace(thermal_resistance=0.0)
    hot = preset("tilted").replace(thermal_resistance=3000.0)
    i = 0.9 * cold.J_c0 * cold.area
    fr = []
    for p in (cold, hot):
        b = HallBarBatch(p, 100, seed=1)
        b.pulse(-0.018, WIDTH)
        b.pulse(i, WIDTH)
        fr.append(b.magnetization.mean())
    assert fr[1] > fr[0] + 0.2


def test_current_density_and_positive_pulse_raises_rh():
    p = preset("tilted")
    hb = HallBar(p, seed=0)
    assert hb.current_density(6e-3) == pytest.approx(6e-3 / (p.width * p.thickness))
    assert hb.longitudinal_resistance == p.R_xx
    hb.pulse(-0.015, WIDTH)
    low = hb.hall_resistance
    hb.pulse(0.015, WIDTH)
    assert hb.hall_resistance - low == pytest.approx(2 * p.R_AHE)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_polarity_reset_per_preset(name):
    p = preset(name)
    hb = HallBar(p, seed=4)
    big = 0.018
    hb.pulse(-big, WIDTH)
    low = hb.hall_resistance
    hb.pulse(big, WIDTH)
    high = hb.hall_resistance
    assert high > low
    assert hb.apply_inplane_field(-0.5 * p.hx_coercive) is False     # below coercive: nothing
    done = hb.apply_inplane_field(-0.1)
    hb.pulse(big, WIDTH)
    if p.polarity_resettable:
        assert done is True and hb.hall_resistance == pytest.approx(low)   # + pulse now drives down
        assert hb.apply_inplane_field(+0.1) is True
        hb.pulse(big, WIDTH)
        assert hb.hall_resistance == pytest.approx(high)
    else:
        assert done is False and hb.hall_resistance == pytest.approx(high)
        assert hb.polarity == 1


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_hall_resistance_bounded(name):
    p = preset(name).replace(R0=0.37)
    hb = HallBar(p, seed=6)
    t = random_trace(hb, 400)
    assert np.all(np.abs(t - p.R0) <= p.R_AHE + 1e-12)
    b = HallBarBatch(p, 50, seed=6)
    rng = np.random.default_rng(0)
    for _ in range(40):
        b.pulse(rng.uniform(-0.015, 0.015, 50), WIDTH)
        assert np.all(np.abs(b.hall_resistance - p.R0) <= p.R_AHE + 1e-12)


# -- presets' staircases -------------------------------------------------------------------------

def test_ladders_are_in_the_instrument_range(ladders):
    for name, adv in ladders.items():
        amps = adv["amplitudes"]
        assert all(b > a for a, b in zip(amps, amps[1:])), name
        assert 2e-3 <= amps[0] and amps[-1] <= 10e-3, name
        # the reset fits the simulated station's 10 V compliance at R_xx = 800 ohm
        assert -10.0 / preset(name).R_xx < adv["reset_current"] < -amps[-1], name
    assert len(ladders["tilted"]["amplitudes"]) == 10
    assert preset("tilted").staircase_ladder(11, WIDTH) == ladders["tilted"]["amplitudes"]


def test_ladder_design_follows_the_read_timing():
    """The reset's read-back still cools while the chain reads the first rungs (a point every
    0.606 s): the design lifts the lower rungs to keep the reads apart; without read-back or with
    reads that see no cooling (period 0) the timing changes nothing."""
    p = preset("tilted")
    chain = suggested_staircase(p, 11, WIDTH)
    free = suggested_staircase(p, 11, WIDTH, read_period=0.0, read_delay=0.0)
    assert chain["expected_fraction"][0] > free["expected_fraction"][0] + 0.005
    assert chain["amplitudes"][0] > free["amplitudes"][0]
    q = p.replace(readback=0.0)
    assert suggested_staircase(q, 6, WIDTH) == suggested_staircase(q, 6, WIDTH, read_period=0.0, read_delay=0.0)
    for bad in ({"read_delay": -0.1}, {"read_period": float("nan")}):
        with pytest.raises(SimulatorInputError, match=next(iter(bad))):
            suggested_staircase(p, 11, WIDTH, **bad)


def test_tilted_staircase_11_states_2pct_ctc(ladders):
    R = staircase(HallBar(preset("tilted"), seed=0), ladders["tilted"], 200)
    n, ctc = count_states(R)
    assert n == 11
    assert 0.015 <= ctc <= 0.025


def test_idmi_and_orange_peel_fewer_states_larger_ctc(ladders):
    results = {}
    for name in ("tilted", "idmi", "orange_peel"):
        R = staircase(HallBar(preset(name), seed=1), ladders[name], 200)
        results[name] = count_states(R)
    (nt, ct), (ni, ci), (no, co) = results["tilted"], results["idmi"], results["orange_peel"]
    assert nt > ni >= no >= 2
    assert ct < ci < co
    assert 0.025 < ci < 0.06 and 0.04 < co < 0.10


def test_batch_statistics_agree_with_single_devices(ladders):
    p, adv = preset("idmi"), ladders["idmi"]
    n = 200
    b = HallBarBatch(p, n, seed=21)
    b.pulse(adv["reset_current"], WIDTH)
    singles = [HallBar(p, seed=1000 + i) for i in range(n)]
    for hb in singles:
        hb.pulse(adv["reset_current"], WIDTH)
    for a in adv["amplitudes"]:
        b.pulse(a, WIDTH)
        for hb in singles:
            hb.pulse(a, WIDTH)
        rb = b.hall_resistance
        rs = np.array([hb.hall_resistance for hb in singles])
        se = math.sqrt(rb.var() / n + rs.var() / n)
        assert abs(rb.mean() - rs.mean()) < 4 * se + 1e-9
        assert rb.std() == pytest.approx(rs.std(), rel=0.3, abs=1e-3 * p.R_AHE)


def test_pulse_train_matches_pulse_loop_statistically(ladders):
    p, adv = preset("tilted"), ladders["tilted"]
    seq = np.array([adv["reset_current"]] + adv["amplitudes"])
    hb = HallBar(p, seed=2)
    tr = hb.pulse_train(np.tile(seq, 150), WIDTH).reshape(150, -1)
    loop = staircase(HallBar(p, seed=2), adv, 150, read=False)
    spacing = np.diff(loop.mean(axis=0)).min()
    assert np.abs(tr.mean(axis=0) - loop.mean(axis=0)).max() < 0.5 * spacing
    assert count_states(tr)[0] >= 10


# -- parameters ------------------------------------------------------------------------------------

def test_params_roundtrip_and_validation():
    p = preset("idmi")
    assert DeviceParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(SimulatorInputError, match="bogus"):
        DeviceParams.from_dict({**p.to_dict(), "bogus": 1})
    with pytest.raises(SimulatorInputError, match="sigma_g"):
        p.replace(sigma_g=-0.1)
    with pytest.raises(SimulatorInputError, match="hx_jitter"):
        p.replace(hx_jitter=0.7)
    with pytest.raises(SimulatorInputError, match="nosuch"):
        preset("nosuch")
    with pytest.raises(SimulatorInputError):
        suggested_staircase(p, 1, WIDTH)
    with pytest.raises(SimulatorInputError):
        HallBar(p, seed=-1)
    with pytest.raises(SimulatorInputError):
        HallBar(p).pulse(1e-3, 0.0)
