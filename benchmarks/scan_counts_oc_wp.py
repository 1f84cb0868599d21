"""Counted work of the chapters' scans ``oc-*`` ("Optimisers as cosmologies") and ``wp-*`` ("Width and precision").

``COUNTERS[name](members, rates) -> (flops, bytes, roofline_s, ended)`` for one group of stored records
(``members``: the ``(created, config, result)`` triples of ``scan_time._groups``; ``rates``: a
``roofline.Rates`` after ``measure``). The counting rule is ``benchmarks/roofline.py``'s: multiply + add =
2 flops, the dense architecture's matmul flops (``train_counts``/``kernel_counts``: forward 2N fan_in fan_out per
layer, backward signals the same except the first layer, weight gradients the same again), elementwise work
(activations, loss, optimiser arithmetic, random numbers) not counted as flops. Every network here is a plain
dense one (``network.mlp`` or the digits classifier trained by ``train.build_kernel`` with an optax
transformation; no low-rank engine), so its bytes are the dense method's: per weight and step 6 words with a
momentum-like state (weight read by the forward and the backward pass, weight and state read and written once
by a fused update), 4 without; the Adam runs 8 (two moment vectors) and the Friedmann optimiser 7 (the norm of
its trace is a reduction that must finish before the update reads the trace again). Biases are counted like
weights (``train_counts`` leaves them out; they matter for the one-hidden-layer ``oc-poly`` network, a third of
its parameters), activations 6 words per element as in ``train_counts``. Optax keeps the momentum trace even at
beta = 0 (``optax.sgd(momentum=0.0)`` is a trace with a traced decay of 0), so ``wp-drift`` (beta = 0) and the
beta = 0 rows of ``wp-precision`` are counted with momentum: that is the representation they ran in. All sizes
come from the record's config; the digits split sizes from ``benchmarks.digits_data()`` (the scan's own split);
a missing field raises KeyError. The roofline time is the sum over the separate computations (each jitted call
or NumPy phase) of max(flops / matmul rate of its dtype, bytes / bandwidth), per configuration.

Rule per scan (N = 1 input point, float64, two erf hidden layers of the config's width unless said):

* ``oc-sweep``: one network per configuration, ``steps`` momentum steps (every schedule keeps a trace; Friedmann
  7 words), one final forward pass, and the kernel (``kernel_counts``) at initialisation and, unless the run
  diverged (result ``deviation`` NaN), at the end.
* ``oc-nesterov``: 3 optimisers x B = len(ns) vmapped networks x T max(ns) steps each (+ a final forward), and
  one kernel at initialisation.
* ``oc-friedmann``: ``steps`` steps of the Friedmann optimiser (7 words per weight), nothing else.
* ``oc-poly``: 4 losses x len(lr_grid) x (seeds + tune_seeds) vmapped one-hidden-layer networks, ``steps``
  steps each (matrix-vector work of 10 width flops per step: the elementwise erf costs more than this).
* ``oc-digits``: len(lr_grid) x seeds vmapped float32 relu classifiers 64 -> hidden -> 10, ``steps`` steps on
  ``batch_size`` examples (N = batch_size, the pixels of the batch read once), then forward passes over
  the train, validation and test split and the test split again (accuracy).
* ``wp-alpha``: ``n_seeds`` kernels at initialisation (``kernel_counts``, C = 1: every seed draws its own weights).
* ``wp-drift``: per seed a kernel at initialisation, ``steps`` momentum steps (trace kept at beta = 0),
  a final forward pass and a kernel at the end.
* ``wp-precision``: len(etas) x len(betas) vmapped networks trained ``steps`` steps in float64 and again in
  float32 (float32 at the float32 matmul rate, 4-byte words; each with a final forward pass), and the
  float64 extras: two kernels, three forward passes and one gradient at initialisation, and the NumPy
  lost-kernel fractions of ``rounding_prediction``, counted as the matrix-vector product ``moved @ w`` of
  their (learning rates x parameters) block (2 flops and 16 bytes, written once and read once, per element;
  per beta 2 len(etas) + 400 learning rates).

Not counted: the continuum predictions (``predict_hubble``, ``predict_homogeneous``: scalar ODEs of 2 unknowns
solved by Dopri8, no network-size matmul; one or two per configuration in ``oc-sweep``, ``oc-nesterov``,
``wp-drift``, one per grid point of ``wp-precision``; their time shows as measured time above the roofline);
the initialisation's random numbers (threefry + erfinv, tens of integer and transcendental operations per
weight: they, not the one matrix-vector product, set the time of ``wp-alpha``, whose bytes are 3 words per
weight, drawn and read twice); NumPy's temporaries in ``rounding_prediction`` (about 5 more passes over the
block); the mini-batch draws of ``oc-digits``; compilation; Python.

Caveats. The byte rule is the fused minimum: XLA's own "bytes accessed" estimate of the whole training step
is 7.05 (momentum), 8.06 (Friedmann) and 10.07 (Adam) words per parameter at width 256-512, against the
counted 6, 7 and 8 (``tests/test_scan_counts_oc_wp.py``). The bandwidth is the axpy's, from DRAM; a network
whose weights and state fit in the last-level cache (2 x 8 x width^2 bytes: 4 MB at width 512, 16 MB at 1000,
this machine's L3 is 16 MB) can beat it: the quick profile's width-512 runs (``oc-sweep``, ``oc-friedmann``,
``wp-drift``) took 0.4-0.7 of their byte roofline, so their fraction can exceed 100%. ``oc-poly``,
``oc-digits`` and ``wp-alpha`` have so little counted work (matrix-vector products of width 256-1000 with one
hidden layer; 64 x 64 classifiers; one kernel per draw of the weights) that elementwise work, random numbers,
the per-step loop and compilation set their time, far above the roofline.
"""
from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import roofline as rl  # noqa: E402  (also enables float64)

#: words per weight and step by optimiser state (see the module docstring)
WORDS = {"momentum": 6, "plain": 4, "adam": 8, "friedmann": 7, "gradient": 3}
#: rows of ``rounding_prediction``'s fine learning-rate grid (``np.logspace(..., 400)``)
ROUNDING_FINE = 400
#: the digits classifier's classes (``benchmark_digits``: sizes = (features,) + hidden + (10,))
DIGITS_CLASSES = 10


def _item(dtype):
    return 4 if dtype == "float32" else 8


def _words_of(method_name: str) -> int:
    """Words per weight and step of a ``standard_methods`` optimiser (by name) or a ``cosmology_schedules`` one."""
    if method_name == "Adam":
        return WORDS["adam"]
    if method_name.startswith("Friedmann"):
        return WORDS["friedmann"]
    return WORDS["momentum"]  # heavy ball, optax Nesterov, Nesterov (k-1)/(k+2), the power laws, de Sitter


def shape_train_counts(shapes, N, dtype, words):
    """(flops, bytes) per configuration and training step of a dense network with layer ``shapes``
    [(fan_in, fan_out), ...] on N rows: ``train_counts``' formula for any shapes (the digits classifier has
    64 inputs and 10 outputs), ``words`` per weight and per bias, 6 words per activation element."""
    item = _item(dtype)
    flops = (sum(2 * N * fi * fo for fi, fo in shapes) + sum(2 * N * fi * fo for fi, fo in shapes[1:])
             + sum(2 * N * fi * fo for fi, fo in shapes))
    nbytes = sum(words * item * (fi * fo + fo) for fi, fo in shapes) + sum(6 * item * N * fo for _, fo in shapes)
    return flops, nbytes


def mlp_train_counts(width, L, N, dtype, words):
    """(flops, bytes) per configuration and step of ``network.mlp`` (input dim 1, scalar output) trained by
    optax: ``roofline.train_counts`` (dense, no per-step kernel) with the optimiser's words per weight, plus
    the biases at the same words."""
    momentum = words != WORDS["plain"]
    f, b, _, _ = rl.train_counts(width, L, N, 1, dtype, "dense", kernel_every_step=False, momentum=momentum)
    shapes = rl.layer_shapes(width, L)
    item = _item(dtype)
    base = WORDS["momentum"] if momentum else WORDS["plain"]
    b += (words - base) * item * sum(fi * fo for fi, fo in shapes)  # Adam 8, Friedmann 7, a bare gradient 3
    b += words * item * sum(fo for _, fo in shapes)  # biases
    return f, b


def forward_counts(shapes, N, dtype):
    """(flops, bytes) of one forward pass: 2N fan_in fan_out per layer; weights and biases read once, the
    activations written once."""
    item = _item(dtype)
    return (sum(2 * N * fi * fo for fi, fo in shapes),
            sum(item * (fi * fo + fo) for fi, fo in shapes) + sum(item * N * fo for _, fo in shapes))


def _kernel(t, width, L, times=1):
    f, b = rl.kernel_counts(width, L, 1, 1)
    t.add(f, b, times=times)


def _train(t, width, L, steps, words, dtype="float64", times=1):
    """``times`` networks trained ``steps`` steps, then the trajectory's final forward pass."""
    f, b = mlp_train_counts(width, L, 1, dtype, words)
    ff, fb = forward_counts(rl.layer_shapes(width, L), 1, dtype)
    t.add(f * steps + ff, b * steps + fb, dtype, times=times)


def _diverged(result) -> bool:
    from nncosmo_helpers.scans import beyond

    return not math.isfinite(float(beyond.decode(result["value"]["fields"]["deviation"])))


def count_sweep(members, rates):
    t = rl.Tally(rates)
    for _, c, r in members:
        width, L = c["width"], c["hidden_layers"]
        _train(t, width, L, c["steps"], _words_of(c["schedule"]))
        _kernel(t, width, L, times=1 if _diverged(r) else 2)
    return t.result({"dense": len(members)})


def count_nesterov(members, rates):
    t = rl.Tally(rates)
    for _, c, _ in members:
        width, L, B = c["width"], c["hidden_layers"], len(c["ns"])
        steps = c["T"] * max(c["ns"])
        _train(t, width, L, steps, WORDS["momentum"], times=3 * B)  # Nesterov, coasting, same beta
        _kernel(t, width, L)
    return t.result({"dense": len(members)})


def count_friedmann(members, rates):
    t = rl.Tally(rates)
    for _, c, _ in members:
        f, b = mlp_train_counts(c["width"], c["hidden_layers"], 1, "float64", WORDS["friedmann"])
        t.add(f * c["steps"], b * c["steps"])  # train.run only: no final forward, no kernel
    return t.result({"dense": len(members)})


def count_poly(members, rates):
    t = rl.Tally(rates)
    for _, c, _ in members:
        nets = len(c["losses"]) * len(c["lr_grid"]) * (len(c["seeds"]) + len(c["tune_seeds"]))
        f, b = mlp_train_counts(c["width"], c["hidden_layers"], 1, "float64", _words_of(c["method"]))
        t.add(f * c["steps"], b * c["steps"], times=nets)  # the loss at the last step: no extra forward
    return t.result({"dense": len(members)})


@functools.lru_cache(maxsize=None)
def digits_sizes():
    """(train, validation, test, features) of the scan's digits split (``benchmarks.digits_data()``)."""
    from nncosmo_helpers.experiments.benchmarks import digits_data

    d = digits_data()
    return int(d.x_train.shape[0]), int(d.x_val.shape[0]), int(d.x_test.shape[0]), int(d.x_train.shape[1])


def count_digits(members, rates):
    t = rl.Tally(rates)
    n_train, n_val, n_test, n_in = digits_sizes()
    for _, c, _ in members:
        dims = [n_in] + list(c["hidden"]) + [DIGITS_CLASSES]
        shapes = list(zip(dims[:-1], dims[1:]))
        nets = len(c["lr_grid"]) * len(c["seeds"])
        N = n_train if c["batch_size"] is None else c["batch_size"]  # None: full batch
        f, b = shape_train_counts(shapes, N, "float32", _words_of(c["method"]))
        b += 4 * N * n_in  # the batch's pixels
        t.add(f * c["steps"], b * c["steps"], "float32", times=nets)
        ff, fb = forward_counts(shapes, n_train + n_val + 2 * n_test, "float32")  # train, val, test loss; accuracy
        t.add(ff, fb + 4 * (n_train + n_val + 2 * n_test) * n_in, "float32", times=nets)
    return t.result({"dense": len(members)})


def count_alpha(members, rates):
    t = rl.Tally(rates)
    for _, c, _ in members:
        _kernel(t, c["width"], c["hidden_layers"], times=c["n_seeds"])
    return t.result({})


def count_drift(members, rates):
    t = rl.Tally(rates)
    for _, c, _ in members:
        width, L, n = c["width"], c["hidden_layers"], c["n_seeds"]
        _kernel(t, width, L, times=2 * n)  # at initialisation and at the end, per seed
        _train(t, width, L, c["steps"], WORDS["momentum"], times=n)  # optax keeps the trace at beta = 0
    return t.result({"dense": len(members)})


def count_precision(members, rates):
    t = rl.Tally(rates)
    for _, c, _ in members:
        width, L, steps = c["width"], c["hidden_layers"], c["steps"]
        n_eta, n_beta = len(c["etas"]), len(c["betas"])
        for dtype in ("float64", "float32"):
            _train(t, width, L, steps, WORDS["momentum"], dtype, times=n_eta * n_beta)
        shapes = rl.layer_shapes(width, L)
        _kernel(t, width, L, times=2)  # precision_maps' alpha, rounding_prediction's alpha
        t.add(*forward_counts(shapes, 1, "float64"), times=3)  # f_init, rounding's L'(f), _rounding_inputs' f
        # _rounding_inputs' gradient (weights read twice, the gradient written)
        t.add(*mlp_train_counts(width, L, 1, "float64", WORDS["gradient"]))
        P = sum(fi * fo + fo for fi, fo in shapes)
        rows = n_beta * (2 * n_eta + ROUNDING_FINE)
        t.add(2.0 * rows * P, 16.0 * rows * P)  # NumPy: moved @ w over (rows x P)
    return t.result({"dense": len(members)})


COUNTERS = {"oc-sweep": count_sweep, "oc-nesterov": count_nesterov, "oc-friedmann": count_friedmann,
            "oc-poly": count_poly, "oc-digits": count_digits, "wp-alpha": count_alpha, "wp-drift": count_drift,
            "wp-precision": count_precision}
