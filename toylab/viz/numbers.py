"""One rule for the numbers on every picture and table: three significant digits, and a
mean ± sd with the sd to two significant digits and the mean to the same decimal place.

    sig(35.04) = '35.0'    sig(0.07261) = '0.0726'    sig(1234.5) = '1,234'
    mean_sd(19.37, 0.3412) = '19.37 ± 0.34'    mean_sd(0.0688, 0.0112) = '0.069 ± 0.011'
"""

from __future__ import annotations

import math

DIGITS = 3
"""Significant digits of a single number."""

SD_DIGITS = 2
"""Significant digits of a standard deviation (the mean is rounded to its last place)."""


def sig(x: float, digits: int = DIGITS) -> str:
    """x to `digits` significant digits, trailing zeros kept (35.0, not 35); whole numbers
    from 10^digits up are shown in full with thousands separators; NaN is '-'."""
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    text = f"{x:#.{digits}g}"
    if "e" in text:  # tiny values: 1.23e-05
        mantissa, exp = text.split("e")
        return f"{mantissa.rstrip('.')}e{int(exp)}"
    return text.rstrip(".")


def _decimals(x: float, digits: int) -> int:
    """Decimal places that show `digits` significant digits of x (0 for large x)."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(abs(x))))


def mean_sd(mean: float, sd: float) -> str:
    """'mean ± sd': sd to SD_DIGITS significant digits, the mean to the same decimal place
    (an sd of 0, or NaN, leaves the mean to DIGITS significant digits alone)."""
    if not math.isfinite(sd) or sd == 0:
        return sig(mean)
    places = _decimals(sd, SD_DIGITS)
    sd_r = round(sd, places)
    # rounding may carry into a new digit (0.0996 -> 0.10): recount on the rounded value
    places = _decimals(sd_r, SD_DIGITS)
    return f"{mean:,.{places}f} ± {sd:,.{places}f}"
