"""Numbers: mean and population std over seeds, the base-to-new H, metric text -> float."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Summary:
    """Mean and population std of one metric over seeds."""

    mean: float
    std: float
    n: int

    @property
    def ci95(self) -> float:
        return 1.96 * self.std / math.sqrt(self.n)

    def spread(self, use_ci95: bool) -> float:
        return self.ci95 if use_ci95 else self.std


def summarize(values: Sequence[float]) -> Summary:
    """Mean and population std (ddof=0, like np.std) of a non-empty sequence."""
    n = len(values)
    mean = sum(values) / n
    variance = sum((value - mean) ** 2 for value in values) / n
    return Summary(mean=mean, std=math.sqrt(variance), n=n)


def harmonic_mean(base: float, new: float) -> float:
    """H of base-to-new generalisation; 0 when both are 0."""
    return 2 * base * new / (base + new) if base + new else 0.0


def parse_metric_value(text: str) -> float | None:
    """'91.1%' or '2,700' -> float; None for anything non-numeric or non-finite (nan, inf)."""
    cleaned = text.strip().removesuffix("%").replace(",", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
