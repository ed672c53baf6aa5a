"""Offline analysis of run files: device states, CTC variation, windows, and what each protocol
kind adds (LTP/LTD, switching currents, retention drift, ...).

Everything works on a ``RunFile`` (``labspin.store.read_run``) or on a plain DataFrame with the
run-file columns, so the numbers do not depend on where the data came from. All per-point work is
vectorised (bincount / sorted prefix sums): a million points analyse in well under a second.

One module per concern:

* ``result``    — ``RunAnalysis``, the result type;
* ``states``    — generic: per-state statistics, the named CTC definitions, distinguishable
  states, the window, 1-D clustering;
* ``run``       — whole runs: ``analyze_run``, ``pool_runs``; the kind's own analysis comes
  from its entry in ``labspin.protocols.registry``;
* ``loop``, ``staircase``, ``potdep``, ``retention`` — the shipped kinds' analyses;
* ``across``    — several runs together: device-to-device spread, I_c vs pulse width.
"""
from labspin.analysis.across import across_runs, currents_by_width, device_spread, thermal_activation_fit
from labspin.analysis.loop import switching_currents
from labspin.analysis.potdep import fit_branch, potdep_analysis
from labspin.analysis.result import RunAnalysis
from labspin.analysis.retention import retention_drift, retention_segments, set_window
from labspin.analysis.run import COLUMNS, analyze_run, analyze_runs, pool_runs
from labspin.analysis.staircase import ctc_without
from labspin.analysis.states import (AUTO_MIN_SEPARATION, DEFAULT_K, MAX_AUTO_STATES, cluster_1d, ctc,
                                     distinguishable, onoff_window, state_stats)

__all__ = ["AUTO_MIN_SEPARATION", "COLUMNS", "DEFAULT_K", "MAX_AUTO_STATES", "RunAnalysis", "across_runs",
           "analyze_run", "analyze_runs", "cluster_1d", "ctc", "ctc_without", "currents_by_width",
           "device_spread", "distinguishable", "fit_branch", "onoff_window", "pool_runs", "potdep_analysis",
           "retention_drift", "retention_segments", "set_window", "state_stats", "switching_currents",
           "thermal_activation_fit"]
