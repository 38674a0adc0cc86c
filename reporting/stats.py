"""The report's statistics: the paired t interval and test per cell, Holm's correction across
the cells of one comparison, and a sign-flip permutation test over all cells that keeps the
seeds' shared data (quantiles and tails from scipy, installed with the toolbox)."""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

from scipy import stats as sps

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
METHOD = ("paired t interval (95 %): mean(d) +- t(0.975, n-1) * sd(d) / sqrt(n), "
          "d = accuracy(value) - accuracy(baseline) per seed, sd with n-1; p from the paired "
          "t test (two-sided), Holm-adjusted over the cells of one comparison")
# Differences closer than this (pt) are one value: accuracies are logged to 0.01 at best.
DEGENERATE_SD = 1e-9
PERMUTATIONS = 20000  # drawn (fixed seed) when the seeds are too many to enumerate
EXACT_SEEDS = 16  # up to 2**16 sign patterns are enumerated, so the p is exact


def t_quantile(p: float, df: int) -> float:
    return float(sps.t.ppf(p, df))


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
        return mean_of(self.differences)

    @property
    def sd(self) -> float | None:
        if self.n < 2:
            return None
        m = self.mean
        return _root_mean_square([d - m for d in self.differences], self.n - 1)

    @property
    def degenerate(self) -> bool:
        """Every difference the same: sd 0, so a t interval or test would claim certainty."""
        return self.n >= 2 and (max(self.differences) - min(self.differences)) <= DEGENERATE_SD

    @property
    def half_width(self) -> float | None:
        if self.n < 2 or self.degenerate:
            return None
        return t_quantile(0.5 + CONFIDENCE / 2, self.n - 1) * self.sd / math.sqrt(self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        h = self.half_width
        return None if h is None else (self.mean - h, self.mean + h)

    @property
    def p_value(self) -> float | None:
        """Two-sided paired t test of mean(d) = 0; None with one seed or sd 0."""
        if self.half_width is None:
            return None
        t = self.mean / (self.sd / math.sqrt(self.n))
        return float(2.0 * sps.t.sf(abs(t), self.n - 1))

    def seeds_for_half_width(self, target: float = 1.0, limit: int = 100000) -> int | None:
        """Fewest seeds whose paired t interval is +- ``target`` pt at the observed sd (None
        with one seed or sd 0: no sd to plan with)."""
        if self.half_width is None:
            return None
        sd, n = self.sd, 2
        while n <= limit:
            if t_quantile(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n) <= target:
                return n
            n += 1 if n < 100 else max(n // 50, 1)  # coarse steps only far out
        return None

    def words(self, unit: str = "pt", holm_p: float | None = None, cells: int = 1) -> str:
        """The verdict in plain words, as the report prints it per cell."""
        text = f"{self.mean:+.1f} {unit}"
        if self.n < 2:
            return f"{text}, one seed: no interval"
        if self.degenerate:
            return (f"{text} in each of {self.n} seeds (sd 0): no interval or test is possible "
                    "from identical differences")
        low, high = self.interval
        excludes = low > 0 or high < 0
        verdict = (f"{text}, interval excludes 0" if excludes
                   else f"{text}, not distinguishable with {self.n} seeds")
        if holm_p is not None and cells > 1 and excludes:
            verdict += (f"; holds after Holm over {cells} cells" if holm_p < ALPHA
                        else f"; not after Holm over {cells} cells")
        return verdict


def pair_up(baseline: dict[int, float], other: dict[int, float]) -> tuple[Paired | None,
                                                                          list[int]]:
    """(paired differences over the seeds both have, seeds only one of them has)."""
    common = sorted(set(baseline) & set(other))
    lonely = sorted(set(baseline) ^ set(other))
    if not common:
        return None, lonely
    return Paired(tuple(other[s] - baseline[s] for s in common), tuple(common)), lonely


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p values (None stays None and does not count as a test)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m, adjusted, running = len(present), [None] * len(p_values), 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))  # monotone in the sorted order
        adjusted[index] = running
    return adjusted


# ------------------------------------------------------------------------- over all cells
@dataclass(frozen=True)
class Summary:
    """Mean over cells of the cells' mean paired differences, with a sign-flip test in which
    a seed is the unit: the cells of one seed (other shot counts, other data sets) share its
    split and draws, so all of one seed's differences change sign together."""
    cells: int
    seeds: tuple[int, ...]
    mean: float
    p_value: float | None  # None: fewer than 2 seeds or all differences 0
    smallest_p: float  # the smallest p any data could give with this many seeds
    exact: bool

    def words(self, unit: str = "pt") -> str:
        text = f"{self.mean:+.1f} {unit} on average over {self.cells} cells"
        if self.p_value is None and len(self.seeds) >= 2:
            return text + "; every paired difference is 0: no test possible"
        if self.p_value is None:
            return text + f"; {len(self.seeds)} seed: no test possible"
        if self.smallest_p > ALPHA:
            return (text + f"; with {len(self.seeds)} seeds no result can reach p < 0.05 "
                    f"(smallest possible p {self.smallest_p:.2g}): more seeds needed")
        if self.p_value < ALPHA:
            return text + f", consistent across seeds (p = {self.p_value:.2g})"
        return text + f", not distinguishable from 0 (p = {self.p_value:.2g})"


def cell_mean_statistic(cells: Sequence[Mapping[int, float]], signs: Mapping[int, int]) -> float:
    return math.fsum(math.fsum(signs[s] * d for s, d in cell.items()) / len(cell)
                     for cell in cells) / len(cells)


def sign_flip_summary(cells: Sequence[Mapping[int, float]]) -> Summary | None:
    """``cells``: per cell, seed -> paired difference. Two-sided p: the share of sign
    patterns (one sign per seed) whose statistic is at least as far from 0 as the observed."""
    cells = [dict(c) for c in cells if c]
    if not cells:
        return None
    seeds = tuple(sorted(set().union(*cells)))
    observed = cell_mean_statistic(cells, {s: 1 for s in seeds})
    k = len(seeds)
    smallest = 2.0 / 2 ** k if k else 1.0
    if k < 2 or all(abs(d) <= DEGENERATE_SD for c in cells for d in c.values()):
        return Summary(len(cells), seeds, observed, None, min(1.0, smallest), True)
    tolerance = 1e-9 * max(1.0, abs(observed))
    if k <= EXACT_SEEDS:
        patterns = itertools.product((1, -1), repeat=k)
        total, exact = 2 ** k, True
    else:
        draw = random.Random(0)
        patterns = ([draw.choice((1, -1)) for _ in seeds] for _ in range(PERMUTATIONS))
        total, exact = PERMUTATIONS, False
    extreme = sum(abs(cell_mean_statistic(cells, dict(zip(seeds, signs)))) >= abs(observed)
                  - tolerance for signs in patterns)
    p = (extreme if exact else extreme + 1) / (total if exact else total + 1)
    return Summary(len(cells), seeds, observed, min(1.0, p), min(1.0, smallest), exact)


def mean_of(values: Sequence[float]) -> float:
    """The mean, without overflow for values near the float limit (a damaged record's 1e308)."""
    return math.fsum(v / len(values) for v in values)


def _root_mean_square(deviations: Sequence[float], divisor: int) -> float:
    """sqrt(sum(d^2) / divisor), scaled so a huge deviation gives a number, not OverflowError."""
    scale = max((abs(d) for d in deviations), default=0.0)
    if scale == 0.0 or not math.isfinite(scale):
        return scale if not math.isfinite(scale) else 0.0
    return scale * math.sqrt(math.fsum((d / scale) ** 2 for d in deviations) / divisor)

