"""The public charts' figures: proofs per API and day, availability per ping and day."""

from __future__ import annotations

import datetime as dt

from console.charts import ERROR, SUCCESS, WARNING, availability_charts, proofs_charts

TODAY = dt.date(2026, 3, 9)
YESTERDAY = dt.date(2026, 3, 8)


def test_proofs_are_charted_for_every_api_together_and_for_each() -> None:
    rows = [
        (YESTERDAY, "cnaf.quotient_familial", 3),
        (TODAY, "cnaf.quotient_familial", 2),
        (TODAY, "men.scolarite", 5),
    ]
    every, charts = proofs_charts(
        rows, 62, TODAY, {"cnaf.quotient_familial": "Quotient familial", "men.scolarite": "Scolarité"}
    )
    assert (
        len(every.bars) == 62 and every.bars[-1].day == TODAY and every.first == TODAY - dt.timedelta(days=61)
    )
    assert [(bar.day, bar.value) for bar in every.bars if bar.measured] == [(YESTERDAY, 3), (TODAY, 7)]
    assert every.total == 10 and every.top == 7
    assert [(chart.key, chart.title, chart.total) for chart in charts] == [
        ("cnaf.quotient_familial", "Quotient familial", 5),
        ("men.scolarite", "Scolarité", 5),
    ]
    # The tallest bar fills the plot; a day without proofs has no height.
    tallest = every.bars[-1]
    assert tallest.y == 8 and tallest.height == every.baseline - 8
    assert every.bars[0].height == 0 and not every.bars[0].measured


def test_a_day_s_availability_leaves_maintenance_out_and_takes_its_colour() -> None:
    pings = [
        {
            "id": "cnaf",
            "name": "CNAF",
            "days": [
                {"day": "2026-03-07", "ok": 1440, "bad": 0, "maintenance": 0},
                {"day": "2026-03-08", "ok": 1380, "bad": 60, "maintenance": 0},
                {"day": "2026-03-09", "ok": 500, "bad": 0, "maintenance": 100},
            ],
        },
        {"id": "men", "name": "MEN", "days": [{"day": "2026-03-09", "ok": 0, "bad": 0, "maintenance": 30}]},
    ]
    cnaf, men = availability_charts(pings, 90, TODAY)
    measured = [(bar.day.isoformat(), bar.value, bar.fill) for bar in cnaf.chart.bars if bar.measured]
    assert measured == [
        ("2026-03-07", 100.0, SUCCESS),
        ("2026-03-08", 95.83, WARNING),
        ("2026-03-09", 100.0, SUCCESS),
    ]
    assert cnaf.chart.top == 100 and cnaf.percent == round(100 * 3320 / 3380, 2)
    assert (cnaf.percent_text, cnaf.chart.bars[-2].text) == ("98,22 %", "95,83 %")
    # Only maintenance: no availability to speak of.
    assert men.percent is None and not any(bar.measured for bar in men.chart.bars)
    bad = availability_charts(
        [{"id": "x", "name": "X", "days": [{"day": "2026-03-09", "ok": 1, "bad": 1, "maintenance": 0}]}],
        90,
        TODAY,
    )
    assert bad[0].chart.bars[-1].fill == ERROR
