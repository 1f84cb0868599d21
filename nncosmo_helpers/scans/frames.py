"""A figure's stored results as labelled data: a pandas table, an xarray grid, a CSV or netCDF file.

* :func:`frame` -- one row per stored configuration: its hyper-parameters (the configuration's
  fields, ``seed`` among them) and its scalar results as columns.
* :func:`dataset` -- the same as an ``xarray.Dataset`` whose dimensions are the hyper-parameters that
  vary over the stored configurations, and the seed; only where those configurations form a full
  product of their levels (Figs. 1 and 2; the others tie some parameters together, e.g. the
  (eta, beta) pairs of footnote 5, and raise a ``ValueError`` that says which).
* :func:`export` -- either one written to a file, CSV or netCDF by the file's suffix.
* :func:`from_records` -- the same table of configurations and results held in memory (the quick
  profile computes its scans without the store); the figure summaries
  (:mod:`nncosmo_helpers.scans.summaries`) take these tables.

Scalar results are the numbers, booleans and strings of a record; nested records contribute their
scalars under dotted names (``mean_field.couplings.lambda1``); lists (trajectories, spectra) are
left out (read them from the records, :func:`nncosmo_helpers.scans.load`) unless ``lists=True``, which
keeps them, and nested records whole, as object columns (not exported). A result field that has
the name of a hyper-parameter is called ``result.<name>``. ``fig`` and ``scan_version``, equal for
every row, go to ``attrs`` with the profile.
"""

from __future__ import annotations

import json
import numbers
import warnings
from pathlib import Path

import numpy as np

from .. import profiles

#: Configuration fields that are bookkeeping, not hyper-parameters (they go to ``attrs``).
BOOKKEEPING = ("fig", "scan_version")


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, numbers.Number, str))


_NOT_SCALAR = object()  # marks a list (or other non-scalar) value: such a field is no column


def _scalars(result: dict, prefix: str = "") -> dict:
    """The fields of ``result`` flattened with dotted names; non-scalar values marked _NOT_SCALAR."""
    out = {}
    for k, v in result.items():
        if isinstance(v, dict):
            out.update(_scalars(v, f"{prefix}{k}."))
        elif _is_scalar(v):
            out[f"{prefix}{k}"] = v
        else:
            out[f"{prefix}{k}"] = _NOT_SCALAR
    return out


def _column(values: list):
    """A column with a plain dtype: bool, int64 or float64 (None -> NaN); object otherwise."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool)
    if present and all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in present):
        if len(present) == len(values) and all(isinstance(v, numbers.Integral) for v in present):
            return np.array(values, dtype=np.int64)
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.array(values, dtype=object)  # strings (pandas makes them a string column), mixtures


def _stored(fig: int, profile: str, results_dir_):
    """``(store, configs, results, n_grid_missing)``: every verified record of the current version of ``fig``.

    Rows of the grid come first, in grid order; stored configurations outside the grid (custom
    lists given to ``scans.run(configs=...)``) follow in file-name order. Files of another package or
    scan version (other keys) are ignored; corrupt ones are warned about and moved aside by the store.
    """
    from . import SCAN_VERSIONS, grid, store

    st = store(fig, profile, results_dir_)
    position = {st.key(c): i for i, c in enumerate(grid(fig, profile))}
    rows = []
    for path in sorted(st.root.glob("*.json")):
        try:
            config = json.loads(path.read_text(encoding="utf-8"))["config"]
            if not isinstance(config, dict):
                raise TypeError("config is not a dict")
            key = st.key(config)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"unreadable result file {path} ({type(exc).__name__}: {exc}); left out", RuntimeWarning,
                          stacklevel=3)
            continue
        if key != path.stem or config.get("fig") != fig or config.get("scan_version") != SCAN_VERSIONS[fig]:
            continue  # another package version or scan version
        result = st.load(config)
        if result is not None:
            rows.append((position.get(key, len(position)), path.name, config, result))
    rows.sort(key=lambda row: row[:2])
    found = {st.key(c) for _, _, c, _ in rows}
    return st, [c for _, _, c, _ in rows], [r for _, _, _, r in rows], sum(k not in found for k in position)


def _table(configs: list[dict], results: list[dict], *, lists: bool, params=None):
    """The one builder of a figure's table: hyper-parameter columns, then the results' columns.

    ``params``: the hyper-parameter names in column order (default: the configurations' keys in
    order of first appearance, without :data:`BOOKKEEPING`). With ``lists`` the non-scalar result
    fields (trajectories, spectra, nested records) are kept as object columns under their own names,
    one Python value per row, next to the dotted scalar columns of nested records.
    """
    import pandas as pd

    if params is None:
        params = [k for k in dict.fromkeys(k for c in configs for k in c) if k not in BOOKKEEPING]
    flat = [_scalars(r) for r in results]
    names = list(dict.fromkeys(k for f in flat for k in f))
    scalar = [k for k in names if all(f.get(k) is not _NOT_SCALAR for f in flat)]
    columns = {k: _column([c.get(k) for c in configs]) for k in params}
    for k in scalar:
        columns[f"result.{k}" if k in columns else k] = _column([f.get(k) for f in flat])
    if lists:
        for k in dict.fromkeys(k for r in results for k in r):
            if k not in scalar and f"result.{k}" not in columns:
                col = np.empty(len(results), dtype=object)
                col[:] = [r.get(k) for r in results]
                columns[f"result.{k}" if k in columns else k] = col
    df = pd.DataFrame(columns)
    df.attrs.update(hyper_parameters=list(params))
    return df


def from_records(configs: list[dict], results: list[dict], fig=None, *, lists: bool = True):
    """A table of in-memory ``configs`` and their ``results`` (e.g. of :func:`~nncosmo_helpers.scans.load_or_compute`).

    The same columns as :func:`frame` (one row per configuration, in the given order), and by
    default also the non-scalar result fields as object columns (``lists=True``), which the Fig. 3
    and Fig. 5 summaries read (the diverged runs' outputs, the mean-field trajectories).
    """
    if len(configs) != len(results):
        raise ValueError(f"{len(configs)} configurations but {len(results)} results")
    df = _table(configs, results, lists=lists)
    fig = fig if fig is not None else (configs[0].get("fig") if configs else None)
    df.attrs.update(fig=fig, missing=0, profile=None,
                    scan_version=configs[0].get("scan_version") if configs else None)
    return df


def frame(fig: int, profile: str | None = None, results_dir_=None, *, lists: bool = False):
    """The stored results of figure ``fig`` as a ``pandas.DataFrame``, one row per stored configuration.

    Every stored configuration of the figure (current package and scan version) is a row, read
    through the store's verification; the grid's come first in grid order. Grid configurations not
    stored (yet) are counted in ``df.attrs["missing"]`` with a warning. Raises ``FileNotFoundError``
    when nothing is stored. ``lists=True`` keeps the non-scalar result fields as object columns
    (see :func:`from_records`): the form the figure summaries take.
    """
    profile = profiles.get_profile(profile)
    st, configs, results, missing = _stored(fig, profile, results_dir_)
    if not configs:
        raise FileNotFoundError(f"no stored results of fig {fig} ({profile} profile) in {st.root}; compute them "
                                f"with python -m nncosmo_helpers.scans --profile {profile} --figs {fig}")
    if missing:
        warnings.warn(f"fig {fig} ({profile}): {missing} configurations of the grid are not stored in {st.root}; "
                      f"the frame holds the {len(configs)} stored ones", UserWarning, stacklevel=2)
    from . import grid

    present = {k for c in configs for k in c if k not in BOOKKEEPING}
    params = [k for k in grid(fig, profile)[0] if k in present] + sorted(present - set(grid(fig, profile)[0]))
    df = _table(configs, results, lists=lists, params=params)
    df.attrs.update(fig=fig, scan_version=configs[0]["scan_version"], profile=profile, missing=missing)
    return df


def dataset(fig: int, profile: str | None = None, results_dir_=None):
    """The stored results of ``fig`` as an ``xarray.Dataset`` over a full grid of hyper-parameters.

    Dimensions: every hyper-parameter that takes more than one value among the stored
    configurations, and ``seed``; hyper-parameters with a single value become attributes. Data
    variables: the scalar results (see :func:`frame`). Raises ``ValueError`` when the stored
    configurations are not the full product of the dimensions' levels.
    """
    return _grid(frame(fig, profile, results_dir_))


def _attrs(df) -> dict:
    return {k: df.attrs[k] for k in ("fig", "profile", "scan_version") if k in df.attrs}


def _grid(df):
    params = df.attrs["hyper_parameters"]
    dims = [k for k in params if df[k].nunique() > 1 or k == "seed"]
    size = int(np.prod([df[k].nunique() for k in dims]))
    if size != len(df) or df.duplicated(dims).any():
        raise ValueError(
            f"fig {df.attrs['fig']} ({df.attrs['profile']}): the {len(df)} stored configurations are not a full product "
            f"of the levels of {dims} ({' x '.join(str(df[k].nunique()) for k in dims)} = {size}), so they do not form "
            "an xarray grid; use frame() (one row per configuration) or export to .csv")
    ds = df.drop(columns=[k for k in params if k not in dims]).set_index(dims).to_xarray()
    ds.attrs.update({k: df[k].iloc[0].item() if isinstance(df[k].iloc[0], np.generic) else df[k].iloc[0]
                     for k in params if k not in dims})
    ds.attrs.update(_attrs(df))
    return ds


def export(fig: int, path, profile: str | None = None, results_dir_=None) -> Path:
    """Write the stored results of ``fig`` to ``path``: ``.csv`` (:func:`frame`) or ``.nc`` (netCDF).

    The netCDF file holds :func:`dataset` when the stored grid is a full product; otherwise the table
    of :func:`frame` with one dimension ``row`` (attribute ``layout = "table"``). netCDF is written
    in the classic format by scipy (no netCDF library needed); read it with ``xarray.open_dataset``.
    Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".nc"):
        raise ValueError(f"export writes .csv or .nc files, got {path.name!r}")
    if suffix == ".csv":
        frame(fig, profile, results_dir_).to_csv(path, index=False)
        return path
    df = frame(fig, profile, results_dir_)
    try:
        ds = _grid(df)
        ds.attrs["layout"] = "grid"
    except ValueError:
        ds = df.rename_axis("row").to_xarray()
        ds.attrs.update(layout="table", **_attrs(df))
    ds.to_netcdf(path, engine="scipy")
    return path


__all__ = ["frame", "from_records", "dataset", "export"]
