"""Paired comparison of an init against the baseline: paired t interval, plain words, seeds.

Runs of one seed share split, data order, augmentations and dropout, so for each seed both
inits have, d = acc(init) - acc(baseline) isolates the init. The 95 % interval is the paired
t interval  mean(d) +- t(0.975, n-1) * sd(d) / sqrt(n)  (sd with n-1). The t quantile is
computed here (regularised incomplete beta, bisection) so the tests can hold it against scipy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

CONFIDENCE = 0.95
METHOD = ("paired t interval (95 %): mean(d) +- t(0.975, n-1) * sd(d) / sqrt(n), "
          "d = accuracy(init) - accuracy(baseline) per seed, sd with n-1")


# ------------------------------------------------------------------ Student t, from scratch
def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's continued fraction of the incomplete beta function (Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                          -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """Inverse of t_cdf for 0.5 <= p < 1, by bisection (monotone, 200 halvings: exact)."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2.0


# --------------------------------------------------------------------------- one comparison
@dataclass(frozen=True)
class Paired:
    differences: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return sum(self.differences) / self.n

    @property
    def sd(self) -> float | None:
        if self.n < 2:
            return None
        m = self.mean
        return math.sqrt(sum((d - m) ** 2 for d in self.differences) / (self.n - 1))

    @property
    def half_width(self) -> float | None:
        if self.n < 2:
            return None
        return t_quantile(0.5 + CONFIDENCE / 2, self.n - 1) * self.sd / math.sqrt(self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        h = self.half_width
        return None if h is None else (self.mean - h, self.mean + h)

    def seeds_for_half_width(self, target: float = 1.0, limit: int = 100000) -> int | None:
        """Fewest seeds whose paired t interval is +- ``target`` pt at the observed sd."""
        sd = self.sd
        if sd is None:
            return None
        n = 2
        while n <= limit:
            if t_quantile(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n) <= target:
                return n
            n += 1 if n < 100 else max(n // 50, 1)  # coarse steps only far out
        return None

    def words(self, unit: str = "pt") -> str:
        """The verdict in plain words, as the report prints it per cell."""
        text = f"{self.mean:+.1f} {unit}"
        interval = self.interval
        if interval is None:
            return f"{text}, one seed: no interval"
        if interval[0] > 0 or interval[1] < 0:
            return f"{text}, interval excludes 0"
        return f"{text}, not distinguishable with {self.n} seeds"


def pair_up(baseline: dict[int, float], other: dict[int, float]) -> tuple[Paired | None,
                                                                          list[int]]:
    """(paired differences over the seeds both have, seeds only one of them has)."""
    common = sorted(set(baseline) & set(other))
    lonely = sorted(set(baseline) ^ set(other))
    if not common:
        return None, lonely
    return Paired(tuple(other[s] - baseline[s] for s in common), tuple(common)), lonely


def summary_over_cells(cell_means: Sequence[float]) -> Paired | None:
    """All cells at once: the cells' mean differences as the units of a one-sample t interval
    (each cell weighs the same, whatever its seeds)."""
    return Paired(tuple(cell_means), tuple(range(len(cell_means)))) if cell_means else None

