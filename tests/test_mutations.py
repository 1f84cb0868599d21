"""Mutation check: physics mistakes planted in a copy of the package must make the unit tests fail.

Each mutation is (file inside nncosmo_helpers/, exact old snippet, new snippet). The snippet must occur
exactly once in today's code, so that moving the code (issue 11) makes this test fail loudly instead
of silently mutating nothing: after a move, repoint the entry in MUTATIONS.

The package is copied once unmutated (the control) and once per mutation into temporary directories.
One subprocess (DRIVER, started from the temporary directory) runs SELECTION (a few existing unit tests,
by node id) against each copy in turn, the control first: before each run it drops every
``nncosmo_helpers`` module and every module imported from tests/ from ``sys.modules`` and puts that copy
first on ``sys.path`` (the project is installed editable, but its finder is appended to
``sys.meta_path``, so the path wins), so the selected test modules are imported afresh against the copy.
A probe plugin records the file of every ``nncosmo_helpers`` module imported during each run, and the
test checks that each one is inside that run's copy. The unmutated copy must pass the selection (the
control); each mutated copy must fail at least one selected test.

Nearly all of a run's time is XLA compilation. In the one subprocess JAX's persistent compilation cache
(a fresh temporary directory) is on: it keys a program on its HLO with the source locations stripped,
so a program a mutation changes is compiled anew, and a program the mutation does not touch is taken
from an earlier run instead of compiled again (the executable the compiler would produce anyway). One
process instead of one per copy also saves seven Python and JAX start-ups.

By default each run stops at its first failing test (``-x``); NNCOSMO_MUTATION_ALL=1 runs the whole
selection for every mutation and prints every test that catches it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# The project's own machinery, not its results: run by `make check-tooling` (and CI), not `make test`.
pytestmark = pytest.mark.tooling

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "nncosmo_helpers"

#: Existing unit tests run against each mutated copy; cheapest first, because with -x the run stops at
#: the first failure.
SELECTION = (
    "tests/test_core.py::test_polynomial_loss_derivatives_match_autodiff",
    "tests/test_core.py::test_iterate_linearized_is_eq2_for_a_linear_model",
    "tests/test_core.py::test_discretisation_error_is_first_order_in_sqrt_eta",
    "tests/test_background.py::test_fixed_hubble_closed_form",
    "tests/test_optim.py::test_de_sitter_prediction_closed_form",
    "tests/test_core.py::test_train_momentum_is_eq2",
)

#: name -> (file in nncosmo_helpers/, old snippet occurring exactly once, new snippet)
MUTATIONS = {
    # eq. 7/9: f'' + 3H f' + K L'(f)/N = 0 becomes f'' - 3H f' + ... (the sign printed in eqs. 15/16)
    "friction_sign": (
        "dynamics.py",
        "return v, -gamma * v + force(y, a)",
        "return v, gamma * v + force(y, a)",
    ),
    # the same sign error in the FLRW background solver (eq. 6 with 3H^2 = V0)
    "friction_sign_background": (
        "cosmology.py",
        "phi_ddot = -3.0 * hubble * phi_dot - alpha * loss.first(phi)",
        "phi_ddot = 3.0 * hubble * phi_dot - alpha * loss.first(phi)",
    ),
    # ... and in the continuum prediction of the momentum schedules (f'' + 3H(t) f' + alpha L'(f) = 0)
    "friction_sign_schedules": (
        "dynamics.py",
        'return v, -_friction(t, f, v, a) * v - a["alpha"] * a["loss"].first(f)',
        'return v, _friction(t, f, v, a) * v - a["alpha"] * a["loss"].first(f)',
    ),
    # the gradient of the dataset loss with respect to the outputs, L'(f_i)/N, loses its 1/N
    "missing_1_over_N_grad_f": (
        "loss.py",
        "return self.first(f) / f.size",
        "return self.first(f)",
    ),
    # the dataset loss used in training becomes the sum over points: every gradient N times too large
    "missing_1_over_N_dataset": (
        "loss.py",
        "return jnp.mean(self(f))",
        "return jnp.sum(self(f))",
    ),
    # L'(f) = n m^2/2 (f - f0)^(n-1) with the exponent n - 1 replaced by n - 2
    "wrong_loss_exponent": (
        "loss.py",
        "_power(d, self.n - 1)",
        "_power(d, self.n - 2)",
    ),
    # the float64 training loop adds the update to the parameters in float32
    "float32_update": (
        "train.py",
        "params = optax.apply_updates(state.params, updates)",
        "params = jax.tree_util.tree_map(lambda a, u: (a.astype(jnp.float32) + u.astype(jnp.float32)).astype(a.dtype),"
        " state.params, updates)",
    ),
}

#: Runs SELECTION against each copy in turn (see the module docstring). argv[1]: a JSON list of runs
#: {"name", "site", "junit", "probe", "log"}; argv[2:]: pytest's arguments (without the junit file).
DRIVER = textwrap.dedent(
    r'''
    import contextlib
    import io
    import json
    import os
    import sys

    import jax
    import jax.monitoring
    import pytest

    jax.config.update("jax_compilation_cache_dir", os.environ["NNCOSMO_MUTATION_JAX_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    events = {}
    jax.monitoring.register_event_listener(lambda e, **kw: events.__setitem__(e, events.get(e, 0) + 1))

    runs, args = json.loads(sys.argv[1]), sys.argv[2:]
    tests_dir = os.environ["NNCOSMO_MUTATION_TESTS"]
    sites = [r["site"] for r in runs]


    class Probe:
        # pytest plugin: record the file of every nncosmo_helpers module imported during the run

        def __init__(self, out):
            self.out = out

        def pytest_sessionfinish(self, session, exitstatus):
            files = {name: getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())
                     if name == "nncosmo_helpers" or name.startswith("nncosmo_helpers.")}
            with open(self.out, "w") as fh:
                json.dump(files, fh)


    for run in runs:
        for name, mod in list(sys.modules.items()):
            path = getattr(mod, "__file__", None) or ""
            if name == "nncosmo_helpers" or name.startswith("nncosmo_helpers.") or path.startswith(tests_dir):
                del sys.modules[name]
        sys.path[:] = [run["site"]] + [p for p in sys.path if p not in sites]
        hits = events.get("/jax/compilation_cache/cache_hits", 0)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pytest.main([*args, "--junitxml=" + run["junit"]], plugins=[Probe(run["probe"])])
        hits = events.get("/jax/compilation_cache/cache_hits", 0) - hits
        out.write(f"\n[mutation driver] {run['name']}: exit {int(code)}, {hits} compiled programs reused\n")
        with open(run["log"], "w") as fh:
            fh.write(out.getvalue())
    '''
)


def mutated_source(name):
    """The mutated text of the file named by MUTATIONS[name]; fails unless the snippet occurs once."""
    rel, old, new = MUTATIONS[name]
    text = (ROOT / PACKAGE / rel).read_text()
    count = text.count(old)
    assert count == 1, f"mutation {name!r}: snippet occurs {count} times in {PACKAGE}/{rel} (code moved? repoint it)"
    assert new != old
    text = text.replace(old, new)
    compile(text, f"{PACKAGE}/{rel}", "exec")  # a mutation must change the physics, not break the syntax
    return text


CONTROL = "control"


def run_all(tmp_path):
    """Copy the package once unmutated and once per mutation, run SELECTION against every copy (DRIVER,
    one subprocess); return {run name: (failed node ids, the run's output, the nncosmo_helpers modules the
    run imported -> their files, the copy's directory)}, the control under CONTROL."""
    runs = []
    for name in [None, *MUTATIONS]:
        label = CONTROL if name is None else name
        work = tmp_path / label
        site = work / "site"
        shutil.copytree(ROOT / PACKAGE, site / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        if name is not None:
            (site / PACKAGE / MUTATIONS[name][0]).write_text(mutated_source(name))
        runs.append({"name": label, "site": str(site), "junit": str(work / "junit.xml"),
                     "probe": str(work / "modules.json"), "log": str(work / "output.txt")})
    (tmp_path / "driver.py").write_text(DRIVER)
    env = dict(os.environ)
    env["NNCOSMO_MUTATION_JAX_CACHE"] = str(tmp_path / "jax-cache")
    env["NNCOSMO_MUTATION_TESTS"] = str(ROOT / "tests")
    stop = [] if os.environ.get("NNCOSMO_MUTATION_ALL") == "1" else ["-x"]
    args = [*stop, "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), *[str(ROOT / s) for s in SELECTION]]
    # cwd outside the repository; the script's folder (tmp_path) is first on sys.path, not the checkout
    proc = subprocess.run([sys.executable, str(tmp_path / "driver.py"), json.dumps(runs), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    results = {}
    for run in runs:
        junit, probe_out, log = (Path(run[k]) for k in ("junit", "probe", "log"))
        output = log.read_text() if log.exists() else proc.stdout + proc.stderr
        assert junit.exists() and probe_out.exists(), output[-3000:]
        cases = list(ET.parse(junit).getroot().iter("testcase"))
        # only tests that ran and failed count (junit <failure>); a collection or fixture error (<error>)
        # would also be raised by a mutation that merely breaks the import
        failed = [f"{c.get('classname')}::{c.get('name')}" for c in cases if c.find("failure") is not None]
        errors = [c.get("name") for c in cases if c.find("error") is not None]
        assert not errors, f"{run['name']}: errors (not test failures) in the run: {errors}\n{output[-3000:]}"
        if run["name"] == CONTROL:  # the control must really run (and pass) every selected test
            assert len(cases) >= len(SELECTION) and not any(c.find("skipped") is not None for c in cases), output[-3000:]
        results[run["name"]] = (failed, output, json.loads(probe_out.read_text()), Path(run["site"]) / PACKAGE)
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of the selection (the control and one per mutation), in one subprocess for the module."""
    return run_all(tmp_path_factory.mktemp("mutations"))


def assert_copy_was_imported(modules, copy):
    """Every nncosmo_helpers module of the run came from the copy, none from the repository."""
    assert PACKAGE in modules, "the run did not import the package"
    for mod, path in modules.items():
        assert path is not None and Path(path).resolve().is_relative_to(copy.resolve()), (mod, path)


def test_mutation_snippets_occur_exactly_once():
    """Fast guard (no subprocess): every mutation still finds its snippet exactly once."""
    for name in MUTATIONS:
        mutated_source(name)


@pytest.mark.slow
def test_unmutated_copy_passes_the_selection(runs):
    failed, output, modules, copy = runs[CONTROL]
    assert_copy_was_imported(modules, copy)
    assert not failed, output[-3000:]
    print(f"control: imported {modules[PACKAGE]}")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_mutation_is_caught(runs, name):
    failed, output, modules, copy = runs[name]
    assert_copy_was_imported(modules, copy)
    assert failed, f"mutation {name!r} survived the selection:\n{output[-3000:]}"
    print(f"mutation {name}: caught by {', '.join(failed)}")
