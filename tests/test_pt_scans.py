"""The perturbations chapter's scans (``pt-networks``, ``pt-error-budget`` of :mod:`nncosmo_helpers.scans.beyond`):
the grids hold the chapter's settings, a stored result equals the experiments called directly, and the
chapter's objects built from stored kernels equal those built from the networks.

References: the experiment functions called directly (not through the scans), the empirical NTK computed
directly at the two ends of the interval, and the error-budget grid computed over all widths at once.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from nncosmo_helpers import dynamics, ntk, scans  # noqa: E402
from nncosmo_helpers.experiments import error_budget, lattice_modes, modes  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402
from nncosmo_helpers.scans import beyond  # noqa: E402
from nncosmo_helpers.train import train_momentum  # noqa: E402


def test_grids_hold_the_chapters_settings():
    q = scans.grid("pt-networks", "quick")
    assert len(q) == (8 + 1) * 2 and all(c["width"] == 128 for c in q)
    trained = {(*beyond.pt_arch(c), s) for c in q for s in c["train"] if not c["detail"]}
    assert trained == {("erf", 1.0, 0.05, 2, 0.1), ("erf", 1.0, 0.05, 2, 1.0), ("erf", 0.1, 0.01, 2, 1.0)}
    detail = [c for c in q if c["detail"]]
    assert [beyond.pt_arch(c) for c in detail] == [("erf", 1.0, 0.5, 2)] * 2 and all(c["train"] == [1.0] for c in detail)
    p = scans.grid("pt-networks", "paper")
    assert len(p) == (8 + 1) * 5 and all(c["width"] == 1000 for c in p)
    assert all(c["train"] == [0.1, 1.0] for c in p if not c["detail"])       # the paper profile trains every configuration
    # every trained configuration of the chapter, and the extra network, for every seed
    for profile in ("quick", "paper"):
        s = beyond.settings("perturbations", profile)
        have = {((*beyond.pt_arch(c), t), c["seed"]) for c in scans.grid("pt-networks", profile) for t in c["train"]}
        want = {(tuple(k), seed) for k in [(*s["extra"], s["extra_interval"]), *s["train"]] for seed in s["seeds"]}
        assert have == want
    ebp = scans.grid("pt-error-budget", "paper")
    assert [c["width"] for c in ebp] == [64, 128, 256, 512, 1000]
    assert all(c["etas"] == [1 / 9, 1 / 36, 1 / 144] and c["seeds"] == [0, 1, 2, 3, 4] and c["steps_at_grid_eta"] == 1000
               and c["batched"] is False for c in ebp)
    ebq = scans.grid("pt-error-budget", "quick")
    assert all(c["etas"] == [1 / 9, 1 / 16, 1 / 25] and c["seeds"] == [0, 1] and c["steps_at_grid_eta"] == 100
               and c["batched"] is True for c in ebq)
    assert beyond.CHAPTERS["perturbations"] == ("pt-networks", "pt-error-budget")


def _small(detail):
    c = next(c for c in scans.grid("pt-networks", "quick") if c["detail"] == detail and (detail or c["train"]))
    return {**c, "width": 16, "n_points": 12, "steps": 20, "record_every": 10, "lattice_modes": 4, "n_modes": 3}


@pytest.mark.parametrize("detail", [False, True])
def test_stored_network_equals_the_experiments_called_directly(tmp_path, detail):
    c = _small(detail)
    stored = beyond.decode(scans.run("pt-networks", "quick", tmp_path, configs=[c], progress=False)[0]["value"])
    arch, loss = beyond.pt_arch(c), PolynomialLoss(*c["loss"])
    apply_fn, params = modes.build_network(arch, width=16, seed=c["seed"])
    grids = beyond.pt_grids(c, c["intervals"])
    kw = dict(eta=c["eta"], beta=c["beta"], loss=loss, steps=c["steps"])
    for i, s in enumerate(grids):
        np.testing.assert_allclose(stored["kernels"].kernels[i], ntk.empirical_ntk(apply_fn, params, grids[s]),
                                   rtol=1e-13, atol=0)
        np.testing.assert_array_equal(stored["kernels"].f_init[i], np.asarray(apply_fn(params, grids[s]))[:, 0])
    assert [t.key for t in stored["trained"]] == [(*arch, float(s)) for s in c["train"]]
    s = c["train"][0]
    run = train_momentum(apply_fn, params, grids[s], record_every=1 if detail else 10, compute_ntk=detail, **kw)
    f, rec = modes.every(run, 10, c["steps"])
    t = stored["trained"][0]
    direct = modes.trained_network(t.key, c["seed"], dynamics.mode_decomposition(ntk.empirical_ntk(apply_fn, params, grids[s])),
                                   f, rec, degeneracy=dynamics.degeneracy_ratio(16), n_modes=3, **kw)
    np.testing.assert_allclose(t.comparison.mean_observed, direct.comparison.mean_observed, rtol=1e-12)
    np.testing.assert_allclose(t.kappa, direct.kappa, rtol=1e-10)
    assert (t.leading_mode, t.seed) == (direct.leading_mode, direct.seed) and t.fraction == pytest.approx(direct.fraction, rel=1e-10)
    if detail:
        b = error_budget.error_budget(apply_fn, params, grids[s], run=run, **kw)
        assert stored["budget"].continuum == pytest.approx(b.continuum, rel=1e-9)
        assert stored["budget"].drift == pytest.approx(b.drift, rel=1e-6)
        lat = lattice_modes.compare_network_lattice(apply_fn, params, grids[s], n_modes=4, record_every=1, run=run, **kw)
        np.testing.assert_allclose(stored["lattice"].field_amplitude, lat.field_amplitude, rtol=1e-9, atol=1e-14)
    else:
        assert stored["budget"] is None and stored["lattice"] is None
    # the chapter's view of the scan
    view = beyond.perturbation_networks(beyond.Read([c], [stored], "quick"))
    assert list(view.measured) == [(arch, c["seed"])] and view.trained[t.key, c["seed"]] is t
    assert list(view.budget) == ([(arch, c["seed"])] if detail else []) and len(view.lattice) == len(view.budget)


def test_every_reads_the_rows_of_a_finer_record():
    x = dynamics.centred_interval(6, 1.0, eta=1 / 9, beta=0.0)
    apply_fn, params = modes.build_network(("erf", 1.0, 0.5, 1), width=8, seed=0)
    run = train_momentum(apply_fn, params, x, eta=1 / 9, beta=0.0, loss=PolynomialLoss(0.1, 1.0, 2), steps=20,
                         record_every=2, compute_ntk=False)
    f, rec = modes.every(run, 10, 20)
    assert rec.tolist() == [0, 10, 20] and np.array_equal(f, np.asarray(run.f)[[0, 5, 10]])
    with pytest.raises(ValueError):
        modes.every(run, 5, 20)            # 5 is not a multiple of the record's 2 steps
    with pytest.raises(ValueError):
        modes.every(run, 10, 40)           # the record ends at 20


def test_spectrum_from_stored_kernels_equals_the_computed_one():
    x = dynamics.centred_interval(12, 1.0, eta=1 / 9, beta=0.0)
    arch = ("erf", 1.0, 0.05, 2)
    grids = {1.0: x}
    measured = {(arch, seed): modes.network_kernels(*modes.build_network(arch, width=24, seed=seed), grids)
                for seed in (0, 1)}
    a = modes.spectrum_ensemble([arch], grids, width=24, seeds=(0, 1))
    b = modes.spectrum_ensemble([arch], grids, width=24, seeds=(0, 1), measured=measured)
    np.testing.assert_array_equal(a.lam_emp, b.lam_emp)
    np.testing.assert_array_equal(a.overlap_emp, b.overlap_emp)
    # the corner entries are the empirical kernel at the two ends, computed directly
    corner = modes.corner_kernel(b, (*arch, 1.0), x)
    for j, seed in enumerate((0, 1)):
        direct = ntk.empirical_ntk(*modes.build_network(arch, width=24, seed=seed), x[[0, -1]])
        np.testing.assert_allclose(corner.empirical[j], direct, rtol=1e-12)
    with pytest.raises(ValueError):
        modes.spectrum_ensemble([arch], {0.1: x, 1.0: x}, width=24, seeds=(0,), measured=measured)


def test_error_budget_widths_join_into_the_grid_of_all_widths():
    x = dynamics.centred_interval(8, 1.0, eta=1 / 9, beta=0.0)
    # 3H = (1 - beta)/sqrt(eta) = 3 at eta = 1/9, beta = 0; 10 steps at eta = 1/9
    kw = dict(etas=(1 / 9, 1 / 16), seeds=(0, 1), friction=3.0, duration=10 / 3,
              loss=PolynomialLoss(0.1, 1.0, 2), hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    whole = error_budget.error_budget_grid(x, widths=(8, 16), **kw)
    joined = error_budget.join_widths([error_budget.error_budget_grid(x, widths=(w,), **kw) for w in (8, 16)])
    np.testing.assert_array_equal(joined.widths, whole.widths)
    for name in ("continuum", "continuum_corrected", "drift", "total", "kappa1"):
        np.testing.assert_allclose(getattr(joined, name), getattr(whole, name), rtol=1e-12)
    for changed in (dict(seeds=np.array([3, 4])), dict(etas=whole.etas * 2), dict(steps=whole.steps + 1)):
        with pytest.raises(ValueError):
            error_budget.join_widths([whole, whole._replace(**changed)])
    with pytest.raises(ValueError):
        error_budget.join_widths([])
