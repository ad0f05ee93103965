"""The public charts, drawn on the server as SVG with their data table beside them.

Why not ``@gouvfr/dsfr-chart``: its components (2.0.4) inject ``<style>`` elements at run time
and draw on a ``<canvas>``. The console's policy allows no inline style (``style-src 'self'``),
and a canvas says nothing to a screen reader nor to a test. An SVG drawn here carries its title
and description (``role="img"``), each bar its value (``<title>``, ``data-*``), and a table
holds the same figures: what RGAA asks of a chart (an accessible alternative), with no script.

Colours are the DSFR's ``blue-france`` (bars) and grey (axes), as attributes of the SVG, not
style.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

WIDTH = 640
"""The drawing's width, in SVG units (it scales to its container)."""
HEIGHT = 180
"""The drawing's height, the axes' labels included."""
_LEFT, _BOTTOM, _TOP = 48, 24, 8
"""Room for the value axis's labels, the days' labels and above the tallest bar."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: its day, its value, where it is drawn."""

    day: dt.date
    value: float
    x: float
    y: float
    width: float
    height: float
    text: str
    """The value as a person reads it (its ``<title>``)."""
    measured: bool
    """Whether the day has a value (else it is drawn as 0 and left out of the table)."""
    fill: str = "#000091"
    """Its colour: the DSFR's blue-france, or a state's colour (`availability_charts`)."""

    @property
    def day_text(self) -> str:
        """The day as people read it."""
        return _day(self.day)


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart of one value per day over a run of days."""

    key: str
    """What it charts, for ids and tests (an API label, a ping id)."""
    title: str
    bars: tuple[Bar, ...]
    top: float
    """The value of the axis's top."""
    top_text: str
    first: dt.date
    last: dt.date
    total: float
    drawn_height: int = HEIGHT
    """The SVG's height."""

    @property
    def first_text(self) -> str:
        """The first day as people read it."""
        return _day(self.first)

    @property
    def last_text(self) -> str:
        """The last day as people read it."""
        return _day(self.last)

    @property
    def width(self) -> int:
        """The SVG's width."""
        return WIDTH

    @property
    def height(self) -> int:
        """The SVG's height."""
        return self.drawn_height

    @property
    def left(self) -> int:
        """Where the plotting area starts."""
        return _LEFT

    @property
    def baseline(self) -> int:
        """The y of the value 0."""
        return self.drawn_height - _BOTTOM


def _french(number: str) -> str:
    """A number as French writes it: a decimal comma."""
    return number.replace(".", ",")


def _day(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def days_to(last: dt.date, count: int) -> list[dt.date]:
    """The ``count`` days ending with ``last``, oldest first."""
    return [last - dt.timedelta(days=back) for back in range(count - 1, -1, -1)]


def bar_chart(
    key: str,
    title: str,
    values: Mapping[dt.date, float],
    days: Iterable[dt.date],
    *,
    top: float | None = None,
    text: str = "{:g}",
    fill: Callable[[float], str] | None = None,
    height: int = HEIGHT,
) -> Chart:
    """A bar per day of ``days`` (a day without value is 0), scaled to ``top`` or the largest value.

    Args:
        key: What it charts (an API label, a ping id).
        title: Its title.
        values: The value of each day.
        days: The days, oldest first.
        top: The axis's top; None: the largest value (1 when all are 0).
        text: How a value is written for people (``str.format``).
        fill: A bar's colour from its value; None: blue-france.
        height: The drawing's height, the axes' labels included.
    """
    run = list(days)
    axis = top if top is not None else max([values.get(day, 0) for day in run] + [1])
    step = (WIDTH - _LEFT) / max(len(run), 1)
    plot = height - _BOTTOM - _TOP
    bars = []
    for index, day in enumerate(run):
        value = values.get(day, 0)
        drawn = plot * value / axis if axis else 0
        bars.append(
            Bar(
                day=day,
                value=value,
                x=round(_LEFT + index * step + step * 0.1, 2),
                y=round(height - _BOTTOM - drawn, 2),
                width=round(step * 0.8, 2),
                height=round(drawn, 2),
                text=_french(text.format(value)),
                measured=day in values,
                **({"fill": fill(value)} if fill is not None else {}),
            )
        )
    return Chart(
        key=key,
        title=title,
        bars=tuple(bars),
        top=axis,
        top_text=_french(text.format(axis)),
        first=run[0],
        last=run[-1],
        total=sum(bar.value for bar in bars),
        drawn_height=height,
    )


def proofs_charts(
    rows: Iterable[tuple[dt.date, str, int]], days: int, today: dt.date, titles: Mapping[str, str]
) -> tuple[Chart, list[Chart]]:
    """The proofs avoided of every API together, then of each API that has some, a bar per day.

    Args:
        rows: ``(day, api label, proofs)`` (``GET /mesh/v1/statistics/proofs_avoided``).
        days: How many days, ending ``today``.
        today: The last day (UTC, as the gateway counts).
        titles: Each API label's title; a label without one is shown as is.
    """
    run = days_to(today, days)
    total: dict[dt.date, float] = {}
    by_api: dict[str, dict[dt.date, float]] = {}
    for day, api, proofs in rows:
        total[day] = total.get(day, 0) + proofs
        by_api.setdefault(api, {})[day] = by_api.get(api, {}).get(day, 0) + proofs
    every = bar_chart("toutes", "Toutes les API", total, run, text="{:.0f}")
    charts = [
        bar_chart(api, titles.get(api, api), values, run, text="{:.0f}")
        for api, values in sorted(by_api.items(), key=lambda item: titles.get(item[0], item[0]))
    ]
    return every, charts


_AVAILABILITY_HEIGHT = 96
"""A ping's chart is a strip: sixteen of them on the status page."""
SUCCESS, WARNING, ERROR = "#18753c", "#b34000", "#ce0500"
"""The DSFR's success, warning and error colours (its ``*-main`` tokens)."""


def _availability_fill(percent: float) -> str:
    return SUCCESS if percent >= 99 else WARNING if percent >= 95 else ERROR


@dataclass(frozen=True, slots=True)
class PingHistory:
    """One ping's 90 days: its chart of availability per day, and over the whole period."""

    chart: Chart
    percent: float | None
    """Minutes available over minutes sampled outside maintenance; None: never sampled."""

    @property
    def percent_text(self) -> str:
        """The share as people read it (``99,5 %``); empty when never sampled."""
        return "" if self.percent is None else _french(f"{self.percent:g} %")


def availability_charts(pings: Iterable[Mapping[str, Any]], days: int, today: dt.date) -> list[PingHistory]:
    """Each ping's availability per day (``GET /mesh/v1/statistics/availability``'s ``pings``) as a chart.

    A day's availability is its ``ok`` minutes over its ``ok`` and ``bad`` ones (maintenance
    left out, as a declared window is no failure); a day with neither has no value.
    """
    run = days_to(today, days)
    histories = []
    for ping in pings:
        values: dict[dt.date, float] = {}
        ok_total = sampled_total = 0
        for entry in ping["days"]:
            ok, bad = int(entry["ok"]), int(entry["bad"])
            ok_total, sampled_total = ok_total + ok, sampled_total + ok + bad
            if ok + bad:
                values[dt.date.fromisoformat(entry["day"])] = round(100 * ok / (ok + bad), 2)
        chart = bar_chart(
            str(ping["id"]),
            str(ping["name"]),
            values,
            run,
            top=100,
            text="{:g} %",
            fill=_availability_fill,
            height=_AVAILABILITY_HEIGHT,
        )
        histories.append(
            PingHistory(chart, round(100 * ok_total / sampled_total, 2) if sampled_total else None)
        )
    return histories
