"""report/stats.py against independent computations: Holm by its definition, the seed-unit
sign-flip test by brute-force enumeration, degenerate (sd 0) differences said as such."""
from __future__ import annotations

import itertools
import math

import pytest

from reporting import stats


@pytest.mark.parametrize("p_values, expected", [
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),  # sorted .01,.03,.04 -> 3*.01, 2*.03, max(.06, .04)
    ([0.5, None, 0.01], [0.5, None, 0.02]),
    ([0.04, 0.03], [0.06, 0.06]),  # monotone: the larger p never gets a smaller adjustment
    ([0.4, 0.4, 0.4, 0.4], [1.0, 1.0, 1.0, 1.0]),  # capped at 1
    ([None], [None]),
])
def test_holm_by_hand(p_values: list, expected: list) -> None:
    got = stats.holm(p_values)
    assert [None if g is None else round(g, 12) for g in got] == expected


def brute_force_p(cells: list[dict[int, float]]) -> float:
    seeds = sorted(set().union(*cells))

    def statistic(signs: dict[int, int]) -> float:
        return sum(sum(signs[s] * d for s, d in c.items()) / len(c) for c in cells) / len(cells)

    observed = abs(statistic({s: 1 for s in seeds}))
    patterns = list(itertools.product((1, -1), repeat=len(seeds)))
    return sum(abs(statistic(dict(zip(seeds, p)))) >= observed - 1e-12
               for p in patterns) / len(patterns)


@pytest.mark.parametrize("cells", [
    [{1: 1.0, 2: 2.0, 3: 0.5}, {1: 0.2, 2: 1.5, 3: 0.9}],
    [{1: -5.0, 2: -5.0}, {1: -5.0, 2: -5.0}],  # issue 23's "[-5.00, -5.00] excludes 0"
    [{1: 3.0, 2: -1.0, 3: 2.0, 4: 0.5, 5: 1.0}, {2: 0.4, 4: 1.1}],  # a cell lacks seeds
    [{s: 0.3 * s - 1.0 for s in range(1, 9)}],
])
def test_sign_flip_p_by_enumeration(cells: list[dict[int, float]]) -> None:
    summary = stats.sign_flip_summary(cells)
    assert summary.exact and summary.p_value == pytest.approx(brute_force_p(cells), abs=1e-12)
    assert summary.smallest_p == pytest.approx(2 / 2 ** len(summary.seeds))
    assert summary.mean == pytest.approx(
        sum(sum(c.values()) / len(c) for c in cells) / len(cells))


def test_two_seeds_never_claim_an_effect() -> None:
    summary = stats.sign_flip_summary([{1: -5.0, 2: -5.0}, {1: -5.0, 2: -5.0}])
    assert summary.p_value == 0.5  # +-5 or 0 over 4 sign patterns: 2 of 4 as extreme
    assert "no result can reach p < 0.05" in summary.words()
    assert "excludes" not in summary.words()


@pytest.mark.parametrize("differences", [(-5.0, -5.0), (0.0, 0.0, 0.0), (2.5, 2.5, 2.5, 2.5)])
def test_identical_differences_give_no_interval(differences: tuple) -> None:
    paired = stats.Paired(differences, tuple(range(len(differences))))
    assert paired.degenerate and paired.interval is None and paired.p_value is None
    assert paired.seeds_for_half_width() is None
    words = paired.words()
    assert "(sd 0)" in words and "excludes" not in words and "interval" in words


def test_holm_words_when_a_cell_does_not_survive() -> None:
    paired = stats.Paired((3.0, 3.2, 2.9), (1, 2, 3))
    assert paired.p_value < 0.05
    assert paired.words(holm_p=0.2, cells=5).endswith("; not after Holm over 5 cells")
    assert paired.words(holm_p=0.01, cells=5).endswith("; holds after Holm over 5 cells")
    # the p against an independent t statistic: mean / (sd / sqrt n), 2-sided tail, 2 df
    t = paired.mean / (paired.sd / math.sqrt(3))
    from scipy.integrate import quad
    density = lambda x: (1 + x * x / 2) ** -1.5 / (2 * math.sqrt(2))  # t pdf, 2 df  # noqa
    assert paired.p_value == pytest.approx(2 * quad(density, t, math.inf)[0], rel=1e-8)
