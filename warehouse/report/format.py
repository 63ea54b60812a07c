"""How numbers read in the report: thin spaces between thousands, a real minus sign, "–" for missing values.

Registered as Jinja filters (``fmt``), so templates format cells and Python never builds table markup.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd


def is_missing(v: object) -> bool:
    """None, NaN and pandas' NA all count as missing (``pd.isna`` of a scalar)."""
    return v is None or bool(pd.isna(v))


def fmt_int(v: object) -> str:
    return "–" if is_missing(v) else f"{round(float(v)):,}".replace(",", "\u2009")  # type: ignore[arg-type]


def fmt_num(v: object, digits: int = 2) -> str:
    return "–" if is_missing(v) else f"{float(v):,.{digits}f}".replace(",", "\u2009").replace("-", "−")  # type: ignore[arg-type]


def fmt_pct(v: object, digits: int = 1, signed: bool = True) -> str:
    """A percentage such as ``+1.2 %``; a value that rounds to zero reads as ``0.0 %`` (no sign)."""
    if is_missing(v):
        return "–"
    f = float(v)  # type: ignore[arg-type]
    if round(f, digits) == 0:
        f = 0.0
    s = f"{f:+.{digits}f}" if signed and f != 0 else f"{f:.{digits}f}"
    return s.replace("-", "−") + "\u2009%"


def fmt_signed_int(v: object) -> str:
    """A signed count: +12, ±0, −3."""
    iv = round(float(v))  # type: ignore[arg-type]
    return ("+" if iv > 0 else "±" if iv == 0 else "−") + fmt_int(abs(iv))


#: how a value of each kind is shown (missing values are shown as "–"); escaping is left to Jinja.
FORMATS: dict[str, Callable[[object], str]] = {
    "text": str,
    "plain": lambda v: str(int(v)),  # type: ignore[call-overload]  # years, ranks
    "int": fmt_int,
    "sint": fmt_signed_int,
    "num2": fmt_num,
    "pct": fmt_pct,  # a signed percentage
    "pctu": lambda v: fmt_pct(v, signed=False),
    "fracu": lambda v: fmt_pct(float(v) * 100, signed=False),  # type: ignore[arg-type]  # a share 0-1
}


def cell(v: object, kind: str) -> str:
    """``v`` formatted as ``kind`` (a key of ``FORMATS``); the Jinja filter ``fmt``."""
    return "–" if is_missing(v) else FORMATS[kind](v)


def span(first: int, last: int) -> str:
    """``2014–2024``, or one year."""
    return str(first) if first == last else f"{first}–{last}"
