"""Level tables: JSON/CSV round trips, the DESIGN §3.4 document, and validation of bad tables."""
from __future__ import annotations

import json

import numpy as np
import pytest

from labspin.errors import UserError
from labspin.levels import FORMAT, LevelTable, load_levels


def table() -> LevelTable:
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1, 7)
    return LevelTable.from_stats(mean, np.abs(rng.normal(0.02, 0.005, 7)), np.arange(7) + 100,
                                 device={"id": "dev-A", "type": "tilted"}, sources=["a.h5", "b.h5"],
                                 ctc_definition="state", extra={"ctc": 0.021, "k": 5})


def test_from_stats_sorts_by_mean_and_keeps_rows_together():
    t = table()
    assert np.all(np.diff(t.mean) > 0)
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1, 7)
    std = np.abs(rng.normal(0.02, 0.005, 7))
    order = np.argsort(mean)
    np.testing.assert_array_equal(t.std, std[order])
    np.testing.assert_array_equal(t.n, (np.arange(7) + 100)[order])


def test_json_round_trip_and_document(tmp_path):
    t = table()
    p = t.save_json(tmp_path / "levels.json")
    doc = json.loads(p.read_text())
    assert doc["format"] == FORMAT
    assert doc["device"] == {"id": "dev-A", "type": "tilted"}
    assert doc["sources"] == ["a.h5", "b.h5"]
    assert (doc["quantity"], doc["unit"], doc["ctc_definition"]) == ("hall_resistance", "ohm", "state")
    assert [lv["state"] for lv in doc["levels"]] == list(range(7))
    assert [lv["mean"] for lv in doc["levels"]] == sorted(lv["mean"] for lv in doc["levels"])
    back = load_levels(p)
    np.testing.assert_array_equal(back.mean, t.mean)
    np.testing.assert_array_equal(back.std, t.std)
    np.testing.assert_array_equal(back.n, t.n)
    assert back.device == t.device and back.sources == t.sources and back.ctc_definition == "state"
    assert back.extra["ctc"] == 0.021


def test_csv_is_neurosim_states_mean_std(tmp_path):
    t = table()
    p = t.save_csv(tmp_path / "mem_states.csv")
    lines = p.read_text().splitlines()
    assert lines[0] == "states,mean,std"
    assert len(lines) == 8
    back = load_levels(p)
    np.testing.assert_array_equal(back.mean, t.mean)       # repr() floats: exact round trip
    np.testing.assert_array_equal(back.std, t.std)


def test_no_overwrite_without_flag(tmp_path):
    t = table()
    p = t.save_json(tmp_path / "l.json")
    before = p.read_text()
    with pytest.raises(UserError, match="exists"):
        t.save_json(p)
    assert p.read_text() == before
    t.mean = t.mean + 1
    t.save_json(p, overwrite=True)
    assert load_levels(p).mean[0] == pytest.approx(t.mean[0])


@pytest.mark.parametrize("rows, reason", [
    ("states,mean,std\n0,1.0,0.1\n", "at least 2 levels"),
    ("states,mean,std\n0,1.0,0.1\n1,1.0,0.2\n", "not strictly increasing"),
    ("states,mean,std\n0,1.0,0.1\n1,nan,0.1\n", "not finite"),
    ("states,mean,std\n0,1.0,-0.1\n1,2.0,0.1\n", "negative"),
    ("states,mean,std\n0,1.0,0.1\n1,abc,0.1\n", "line 3"),
    ("level,value\n0,1.0\n1,2.0\n", "header"),
    ("", "empty"),
])
def test_bad_csv_tables_are_refused(tmp_path, rows, reason):
    p = tmp_path / "bad.csv"
    p.write_text(rows)
    with pytest.raises(UserError, match=reason) as e:
        load_levels(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_bad_json_tables_are_refused(tmp_path):
    p = tmp_path / "bad.json"
    good = table().to_dict()
    for doc, reason in [
        ("{not json", "not valid JSON"),
        (json.dumps({**good, "format": "other/1"}), "format"),
        (json.dumps({**good, "levels": "x"}), "levels"),
        (json.dumps({**good, "levels": [{"mean": 1.0}]}), r"levels\[0\]"),
        (json.dumps({**good, "levels": good["levels"][::-1]}), "not strictly increasing"),
        (json.dumps({**good, "levels": [{"mean": 1.0, "std": None}, {"mean": 2.0, "std": 0.1}]}), "numbers"),
    ]:
        p.write_text(doc)
        with pytest.raises(UserError, match=reason):
            load_levels(p)
    with pytest.raises(UserError, match="not found"):
        load_levels(tmp_path / "missing.json")
