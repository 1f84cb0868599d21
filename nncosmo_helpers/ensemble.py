"""Seed ensembles: the one definition of "a median with its seed spread".

A finite-width network is one draw of its initialisation. A number the book states about a set of
networks is therefore an ensemble value: the same statistic computed seed by seed, reported as the
median over seeds with the range over seeds (:class:`SeedSpread`). That range is also the tolerance
of the number when it is recorded as a claim (``book.claim_spread``): another machine, another BLAS,
moves a float64 value by ~1e-9 relative; another draw of the seeds moves it by its seed range.

Network-free and training-free: plain NumPy on numbers already computed.

- :func:`spread`: values that are already one per seed.
- :func:`over_seeds`: per-network values with their seeds; a statistic (median by default) per seed.
- :func:`of_rows`: a statistic of a list of records (dicts with a ``"seed"`` field), seed by seed.
- :func:`ensemble`: per-network values with configuration keys and seeds: the median over
  configurations of each configuration's median over seeds, with the range over seeds of the
  per-seed median over configurations.
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

    ``values`` are the per-seed values (sorted by seed), NaN-free; with no value, the numbers are NaN.
    """

    median: float
    low: float
    high: float
    values: tuple

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

    def text(self, fmt: str = ".3g") -> str:
        """"median [low, high]" (just the median when all seeds agree)."""
        if not self.values:
            return "-"
        if self.low == self.high:
            return f"{self.median:{fmt}}"
        return f"{self.median:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def spread(per_seed: Iterable[float]) -> SeedSpread:
    """:class:`SeedSpread` of values that are one per seed (NaN values are left out)."""
    v = np.asarray(list(per_seed), dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return SeedSpread(nan, nan, nan, ())
    return SeedSpread(float(np.median(v)), float(v.min()), float(v.max()), tuple(float(x) for x in v))


def over_seeds(values: Sequence[float], seeds: Sequence[Hashable],
               stat: Callable[[np.ndarray], float] = np.median) -> SeedSpread:
    """``stat`` of the values of each seed separately (NaN values left out), then :func:`spread`.

    ``values[j]`` belongs to the network of seed ``seeds[j]``. With ``stat=np.max`` this is "the largest
    value, seed by seed"; the default is the median over the networks of a seed.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (len(seeds),):
        raise ValueError(f"one value per seed entry expected, got {values.shape} values for {len(seeds)} seeds")
    per_seed = {}
    for v, s in zip(values, seeds):
        if np.isfinite(v):
            per_seed.setdefault(s, []).append(v)
    return spread(float(stat(np.asarray(per_seed[s]))) for s in sorted(per_seed))


def of_rows(rows: Sequence[dict], stat: Callable[[list], Any], seed_key: str = "seed") -> SeedSpread:
    """``stat`` (a function of a list of records) applied to the records of each seed separately.

    Seeds for which ``stat`` raises ValueError (the max of an empty selection) are left out.
    """
    vals = []
    for s in sorted({r[seed_key] for r in rows}):
        try:
            vals.append(float(stat([r for r in rows if r[seed_key] == s])))
        except ValueError:
            continue
    return spread(vals)


def ensemble(values: Sequence[float], keys: Sequence[Hashable], seeds: Sequence[Hashable]) -> SeedSpread:
    """Median over configurations of the per-configuration median over seeds, with its seed range.

    ``values[j]`` belongs to configuration ``keys[j]`` (the configuration without its seed) and seed
    ``seeds[j]``. The median is over configurations of each one's median over its seeds; ``low``/``high``
    are the smallest and largest over seeds of the median over the configurations of that seed (the
    amount another choice of seeds would move the median by). NaN values are left out.
    """
    values = np.asarray(values, dtype=float)
    if not (values.shape == (len(keys),) == (len(seeds),)):
        raise ValueError(f"values {values.shape}, keys {len(keys)}, seeds {len(seeds)}: one each per network")
    per_config, per_seed = {}, {}
    for v, k, s in zip(values, keys, seeds):
        if np.isfinite(v):
            per_config.setdefault(k, []).append(v)
            per_seed.setdefault(s, []).append(v)
    by_seed = spread(float(np.median(per_seed[s])) for s in sorted(per_seed))
    if not per_config:
        return by_seed
    return by_seed._replace(median=float(np.median([np.median(v) for v in per_config.values()])))
