"""What :mod:`.beyond` and the scan modules it registers (:mod:`.background`) share, below both of them:
the lossless JSON encoding of the experiments' results and one network function per architecture.

Imports point one way: :mod:`.beyond` and :mod:`.background` import this module, it imports neither.
"""

from __future__ import annotations

import functools
import importlib

import jax
import numpy as np

from .. import network
from ..loss import PolynomialLoss


def _enc_float(v: float):
    v = float(v)
    return v if np.isfinite(v) else {"__float__": repr(v)}


def encode(obj):
    """A JSON-able form of ``obj`` that :func:`decode` turns back into an equal object.

    NumPy (and JAX) arrays keep dtype and shape, NumPy scalars their type, floats NaN and inf (as
    tagged strings); NamedTuples of the package are tagged with their class, a
    :class:`~nncosmo_helpers.loss.PolynomialLoss` with its (m, f0, n); dicts need str keys.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):  # first: np.float64 is a float, np.bool_ is not a bool
        return {"__scalar__": obj.dtype.str, "value": encode(obj.item())}
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return _enc_float(obj)
    if isinstance(obj, PolynomialLoss):
        return {"__loss__": [encode(obj.m), encode(obj.f0), encode(obj.n)]}
    if isinstance(obj, (np.ndarray, jax.Array)):
        a = np.asarray(obj)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"cannot encode an array of dtype {a.dtype}")
        flat = a.ravel().tolist()
        if a.dtype.kind == "f":
            flat = [_enc_float(v) for v in flat]
        return {"__ndarray__": a.dtype.str, "shape": list(a.shape), "data": flat}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        cls = type(obj)
        if not cls.__module__.startswith("nncosmo_helpers."):
            raise TypeError(f"cannot encode a NamedTuple of {cls.__module__}")
        return {"__namedtuple__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {k: encode(v) for k, v in zip(obj._fields, obj)}}
    if isinstance(obj, (list, tuple)):
        return {"__tuple__": [encode(v) for v in obj]} if isinstance(obj, tuple) else [encode(v) for v in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("cannot encode a dict with non-str keys")
        if any(k.startswith("__") for k in obj):
            raise TypeError("dict keys starting with '__' are reserved for the encoding")
        return {k: encode(v) for k, v in obj.items()}
    raise TypeError(f"cannot encode an object of type {type(obj).__name__}")


def decode(obj):
    """The inverse of :func:`encode`."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__scalar__" in obj:
        return np.dtype(obj["__scalar__"]).type(decode(obj["value"]))
    if "__loss__" in obj:
        return PolynomialLoss(*obj["__loss__"])
    if "__ndarray__" in obj:
        data = [decode(v) for v in obj["data"]]
        return np.array(data, dtype=np.dtype(obj["__ndarray__"])).reshape(obj["shape"])
    if "__tuple__" in obj:
        return tuple(decode(v) for v in obj["__tuple__"])
    if "__namedtuple__" in obj:
        module, name = obj["__namedtuple__"].split(":")
        if not module.startswith("nncosmo_helpers."):
            raise ValueError(f"refusing to decode a class from {module}")
        cls = getattr(importlib.import_module(module), name)
        return cls(**{k: decode(v) for k, v in obj["fields"].items()})
    return {k: decode(v) for k, v in obj.items()}


@functools.lru_cache(maxsize=None)
def _mlp(width, hidden_layers, activation, W_std, b_std):
    """One (init_fn, apply_fn) per architecture in a process: the jitted loops take apply_fn as a static
    argument, so a new closure per configuration would recompile them."""
    return network.mlp(width=width, hidden_layers=hidden_layers, activation=activation, W_std=W_std, b_std=b_std)


__all__ = ["encode", "decode"]
