"""Seed ensembles: the one definition of "a median with its seed spread".

A finite-width network is one draw of its initialisation. A number the book states about a set of
networks is therefore an ensemble value: the same statistic computed seed by seed, reported as the
median over seeds with the range over seeds (:class:`SeedSpread`). That range is also the tolerance
of the number when it is recorded as a claim (``book.claim_spread``): another machine, another BLAS,
moves a float64 value by ~1e-9 relative; another draw of the seeds moves it by its seed range.

Network-free and training-free: plain NumPy on numbers already computed.

- :func:`spread`: values that are already one per seed.
- :func:`over_seeds`: per-network values with their seeds; a statistic (median by default) per seed.
  With the median and one network per configuration and seed this is "the median over
  configurations, computed seed by seed": the median over seeds of each seed's median over the
  configurations, with the range of those per-seed medians (so the median always lies in [low, high]).
- :func:`of_rows`: a statistic of a list of records (dicts with a ``"seed"`` field), seed by seed.

Non-finite values (NaN, inf: an undefined statistic, a network that did not move) are left out, and
counted: :attr:`SeedSpread.left_out` says how many, ``.text()`` and ``book.claim_spread`` say it when
it is not zero, so that a spread never silently rests on fewer networks than the reader thinks.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

#: relative run-to-run noise of a deterministic float64 value (another CPU, another BLAS): the floor
#: of a seed-spread tolerance when the seeds happen to agree
FLOAT64_NOISE = 1e-9


class SeedSpread(NamedTuple):
    """Median over seeds of a per-seed statistic, its smallest and largest value, and the values.

    ``values`` are the per-seed values (sorted by seed), all finite; with no value, the numbers are NaN.
    ``left_out``: how many non-finite values the builder dropped on the way (per-network values before
    the per-seed statistic, and per-seed values), 0 when nothing was dropped.
    """

    median: float
    low: float
    high: float
    values: tuple
    left_out: int = 0

    @property
    def n_seeds(self) -> int:
        return len(self.values)

    @property
    def spread(self) -> float:
        """The full range over seeds, ``high - low``."""
        return self.high - self.low

    def tolerance(self, noise: float = FLOAT64_NOISE) -> float:
        """Absolute tolerance of the median as a claim: the seed range, at least ``noise`` x |median|."""
        return float(max(self.high - self.low, noise * abs(self.median)))

    def left_out_text(self) -> str:
        """"(k non-finite left out)" when :attr:`left_out` k > 0, else ""."""
        return f"({self.left_out} non-finite left out)" if self.left_out else ""

    def text(self, fmt: str = ".3g") -> str:
        """"median [low, high]" (just the median when all seeds agree), followed by
        "(k non-finite left out)" when k > 0 non-finite values were dropped."""
        if not self.values:
            out = "-"
        elif self.low == self.high:
            out = f"{self.median:{fmt}}"
        else:
            out = f"{self.median:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"
        return f"{out} {self.left_out_text()}" if self.left_out else out


def spread(per_seed: Iterable[float], *, left_out: int = 0) -> SeedSpread:
    """:class:`SeedSpread` of values that are one per seed; non-finite values are left out and counted
    (``left_out``: non-finite values already dropped before, added to the count)."""
    v = np.asarray(list(per_seed), dtype=float).ravel()
    fin = np.isfinite(v)
    left_out = int(left_out) + int((~fin).sum())
    v = v[fin]
    if v.size == 0:
        nan = float("nan")
        return SeedSpread(nan, nan, nan, (), left_out)
    return SeedSpread(float(np.median(v)), float(v.min()), float(v.max()), tuple(float(x) for x in v), left_out)


def over_seeds(values: Sequence[float], seeds: Sequence[Hashable],
               stat: Callable[[np.ndarray], float] = np.median) -> SeedSpread:
    """``stat`` of the finite values of each seed separately, then :func:`spread` over seeds.

    ``values[j]`` belongs to the network of seed ``seeds[j]``. With ``stat=np.max`` this is "the largest
    value, seed by seed"; the default is the median over the networks of a seed. With one network per
    configuration and seed, the default is the ensemble value of a set of configurations: the median
    over seeds of the per-seed median over configurations, ``low``/``high`` the range of those per-seed
    medians, so ``low <= median <= high`` always. Non-finite values are left out and counted in
    ``left_out`` (a seed with no finite value drops out of the seed count).
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (len(seeds),):
        raise ValueError(f"one value per seed entry expected, got {values.shape} values for {len(seeds)} seeds")
    per_seed = {}
    for v, s in zip(values, seeds):
        if np.isfinite(v):
            per_seed.setdefault(s, []).append(v)
    dropped = int((~np.isfinite(values)).sum())
    return spread((float(stat(np.asarray(per_seed[s]))) for s in sorted(per_seed)), left_out=dropped)


def of_rows(rows: Sequence[dict], stat: Callable[[list], Any], seed_key: str = "seed") -> SeedSpread:
    """``stat`` (a function of a list of records) applied to the records of each seed separately.

    Seeds for which ``stat`` raises ValueError (the max of an empty selection) are left out (they do not
    count in ``n_seeds``); a non-finite per-seed value is left out and counted in ``left_out``. ``stat``
    sees the records as they are: if it must not rest on non-finite record values, it filters them.
    """
    vals = []
    for s in sorted({r[seed_key] for r in rows}):
        try:
            vals.append(float(stat([r for r in rows if r[seed_key] == s])))
        except ValueError:
            continue
    return spread(vals)
