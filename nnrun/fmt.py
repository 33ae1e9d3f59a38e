"""Value formatting shared by the terminal tables, the HTML report, the plots and sweep trial names."""

from __future__ import annotations

import math
import numbers
from typing import Any


def finite(v: Any) -> float | None:
    """float(v), or None for None, booleans, non-numbers, NaN and infinities."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def pct(v: Any, digits: int = 2, missing: str = "-") -> str:
    """0.9733 -> '97.33%'."""
    f = finite(v)
    return missing if f is None else f"{100 * f:.{digits}f}%"


def fixed(v: Any, digits: int = 4, missing: str = "-") -> str:
    f = finite(v)
    return missing if f is None else f"{f:.{digits}f}"


def significant(v: Any, digits: int = 4, missing: str = "-") -> str:
    """To a number of significant digits: 0.0123456 -> '0.01235', 1.23456 -> '1.235'."""
    f = finite(v)
    return missing if f is None else f"{f:.{digits}g}"


def compact(v: Any) -> str:
    """A parameter value in few characters: 3 -> '3', 0.25 -> '0.25', 0.0001 -> '1e-04',
    3.25e-06 -> '3.25e-06'; anything not a number (True, None, 'relu') as str()."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    f = float(v)
    if f != 0 and (abs(f) < 1e-3 or abs(f) >= 1e5):
        return f"{f:.0e}" if f == float(f"{f:.0e}") else f"{f:.2e}"
    return f"{f:.4g}"


def duration(v: Any, missing: str = "-", sep: str = "") -> str:
    """Seconds as '12.3s' or '2m05s' (sep=' ' gives '12.3 s', '2m 05s')."""
    f = finite(v)
    if f is None:
        return missing
    return f"{f:.1f}{sep}s" if f < 120 else f"{int(f // 60)}m{sep}{f % 60:02.0f}s"


def metric(name: str, v: Any, missing: str = "-") -> str:
    """A metric by its name: accuracies as percentages, the rest (losses) fixed-point."""
    return pct(v, missing=missing) if name.endswith("accuracy") else fixed(v, missing=missing)


def value(v: Any, missing: str = "-") -> str:
    """A parameter value as shown to people: floats to 4 significant digits (0.001, 1e-05,
    0.1235), None as `missing`, anything else as str()."""
    if v is None:
        return missing
    return significant(v, missing=str(v)) if isinstance(v, float) else str(v)
