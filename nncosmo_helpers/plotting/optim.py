"""Figures of the chapter "Optimisers as cosmologies"."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np

from . import finish, new_figure

_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def schedules_and_trajectories(schedules, beta_of_i, runs, *, t_scale=1.0):
    """(a) beta_i of every schedule against the step i; (b) network outputs (markers) and the
    FLRW predictions (lines) for one loss, one learning rate.

    ``beta_of_i``: {name: (i, beta_i)}. ``runs``: {name: DualityCheck from experiments.schedules.duality_check}; the
    continuum time t = step sqrt(eta) (``t_scale`` = sqrt(eta)).
    """
    fig, (ax1, ax2) = new_figure(2, width=10.0, height=3.9)
    for k, s in enumerate(schedules):
        i, b = beta_of_i[s.name]
        ax1.plot(i, b, lw=1.4, label=s.name, color=f"C{k}", ls="--" if "Nesterov" in s.name or "Friedmann" in s.name else "-")
        r = runs[s.name]
        t = np.asarray(r.steps) * t_scale
        ax2.plot(t, r.pred, color=f"C{k}", lw=1.2)
        every = max(1, len(t) // 25)
        ax2.plot(t[::every], r.f[::every], _MARKERS[k % len(_MARKERS)], color=f"C{k}", ms=3.5, mfc="none")
    ax1.set_xscale("log")
    ax1.set_xlabel("step $i$")
    ax1.set_ylabel(r"momentum $\beta_i$")
    ax1.set_title("(a) momentum schedules")
    ax1.legend(fontsize=7.5, loc="lower right")
    ax2.set_xlabel(r"$t = i\sqrt{\eta}$")
    ax2.set_ylabel(r"network output $f$")
    ax2.set_title("(b) network (markers) and FLRW prediction (lines)")
    return finish(fig)


def duality_scatter(rows):
    """Fig. 3 of the paper for every schedule: |predicted - actual| at the end against |f_end - f_init|,
    coloured by alpha(t_max) - alpha(0). ``rows``: DualityCheck results (experiments.schedules) with
    ``schedule``, ``deviation``, ``span``, ``dalpha``."""
    fig, ax = new_figure(width=6.8, height=4.4)
    names = list(dict.fromkeys(r.schedule for r in rows))
    dal = np.array([r.dalpha for r in rows])
    lim = np.nanmax(np.abs(dal))
    norm = mpl.colors.Normalize(-lim, lim)
    for k, name in enumerate(names):
        sel = [r for r in rows if r.schedule == name]
        sc = ax.scatter([r.span for r in sel], [abs(r.deviation) for r in sel], c=[r.dalpha for r in sel],
                        cmap="coolwarm", norm=norm, marker=_MARKERS[k % len(_MARKERS)], edgecolors="k", linewidths=0.4,
                        s=36, label=name)
    span = np.array([r.span for r in rows])
    x = np.geomspace(np.nanmin(span), np.nanmax(span), 10)
    for frac, ls in ((1e-1, ":"), (1e-2, "--"), (1e-3, "-.")):
        ax.plot(x, frac * x, color="0.5", lw=0.8, ls=ls)
        ax.text(x[-1], frac * x[-1], f" {frac:g}", fontsize=8, color="0.4", va="center")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$|f(t_{\max}) - f(0)|$")
    ax.set_ylabel(r"$|f_{\rm pred}(t_{\max}) - f(t_{\max})|$")
    leg = ax.legend(fontsize=7.5, loc="upper left")
    for h in leg.legend_handles:
        h.set_facecolor("0.8")
    fig.colorbar(sc, ax=ax, label=r"$\alpha(t_{\max}) - \alpha(0)$")
    return finish(fig)


def nesterov_convergence(result, slopes):
    """(a) the trajectories of Nesterov's method and the coasting schedule at the largest and the
    smallest eta, with the continuum prediction; (b) their distances against eta (log-log)."""
    fig, (ax1, ax2) = new_figure(2, width=10.0, height=3.9)
    t, eta = result.t, result.eta
    for b, ls in ((0, ":"), (len(eta) - 1, "-")):
        ax1.plot(t, result.f["nesterov"][b], ls, color="C0", label=fr"Nesterov, $\eta$={eta[b]:.2g}")
        ax1.plot(t, result.f["coasting"][b], ls, color="C1", label=fr"coasting $p=1$, $\eta$={eta[b]:.2g}")
    ax1.plot(t, result.pred, "k--", lw=1.0, label=r"$\ddot f + (3/t)\dot f + \alpha\mathcal{L}' = 0$")
    ax1.set_xlabel(r"$t = k\sqrt{\eta}$")
    ax1.set_ylabel("network output $f$")
    ax1.set_title("(a) trajectories")
    ax1.legend(fontsize=7.5)
    labels = {
        "nesterov_vs_coasting": "Nesterov vs coasting",
        "nesterov_vs_same_beta": r"Nesterov vs heavy ball with $\beta_k=\frac{k-1}{k+2}$",
        "nesterov_vs_ode": "Nesterov vs continuum",
        "coasting_vs_ode": "coasting vs continuum",
    }
    for k, (key, label) in enumerate(labels.items()):
        ax2.loglog(eta, getattr(result, key), "o-", color=f"C{k}", ms=4, label=f"{label} (slope {slopes[key]:.2f})")
    ax2.loglog(eta, result.nesterov_vs_coasting[-1] * np.sqrt(eta / eta[-1]), "k:", lw=0.9, label=r"$\propto\sqrt{\eta}$")
    ax2.set_xlabel(r"learning rate $\eta$")
    ax2.set_ylabel(r"$\max_{t\leq T} |\Delta f|$")
    ax2.set_title("(b) distances")
    ax2.legend(fontsize=7.5)
    return finish(fig)


def friedmann_late_time(histories, predictions):
    """The Friedmann optimiser with V0 = 0: (a) rho t^2 and (b) H t against t, for several losses,
    with the late-time values 3 p^2 and p of a field oscillating in V ~ phi^n (dashed).

    ``histories``: {label: (FriedmannHistory from experiments.schedules.friedmann_history, p)}; ``predictions``: {label: (t, rho)}
    from the continuum equation (drawn as thin lines)."""
    fig, (ax1, ax2) = new_figure(2, width=10.0, height=3.9)
    for k, (label, (h, p)) in enumerate(histories.items()):
        t = h.t[1:]
        ax1.loglog(t, h.rho[1:] * t**2, color=f"C{k}", lw=0.9, label=label)
        ax1.axhline(3 * p**2, color=f"C{k}", ls="--", lw=0.9)
        ax2.semilogx(t, h.hubble[1:] * t, color=f"C{k}", lw=0.9, label=label)
        ax2.axhline(p, color=f"C{k}", ls="--", lw=0.9)
        if label in predictions:
            tp, rho = predictions[label]
            ax1.loglog(tp, rho * tp**2, color="k", lw=0.6, ls=":")
    ax1.set_xlabel(r"$t = i\sqrt{\eta}$")
    ax1.set_ylabel(r"$\rho\, t^2 = 3H^2 t^2$")
    ax1.set_title(r"(a) energy; dashed: $3p^2$")
    ax1.legend(fontsize=7.5)
    ax2.set_xlabel(r"$t = i\sqrt{\eta}$")
    ax2.set_ylabel(r"$H t$")
    ax2.set_title("(b) effective expansion exponent; dashed: $p$")
    ax2.set_ylim(0, 1.2)
    return finish(fig)


def benchmark_bars(results, metric, *, ylabel, title=None, ax=None):
    """Mean and spread (std over seeds) of ``metric`` per method; results: list of BenchmarkResult."""
    own = ax is None
    if own:
        fig, ax = new_figure(width=6.4, height=3.6)
    names = [r.method for r in results]
    vals = [np.asarray(r.metrics[metric], float) for r in results]
    x = np.arange(len(names))
    ax.bar(x, [v.mean() for v in vals], yerr=[v.std() for v in vals], color=[f"C{k}" for k in x], alpha=0.8, capsize=3)
    for k, v in enumerate(vals):
        ax.plot(np.full(len(v), k) + np.linspace(-0.15, 0.15, len(v)), v, "k.", ms=3)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return finish(fig) if own else ax


def benchmarks_figure(poly, digits, *, ncols=2):
    """Polynomial losses (log10 final loss, one panel per loss) and digits (test loss, test accuracy)."""
    n = len(poly) + 2
    nrows = -(-n // ncols)
    fig, axes = new_figure(ncols, nrows, width=3.6 * ncols, height=3.1 * nrows)
    axes = np.atleast_1d(axes).ravel()
    for ax, (label, res) in zip(axes, poly.items()):
        benchmark_bars(res, "log10_loss", ylabel=r"$\log_{10}\mathcal{L}$ at the end", title=label, ax=ax)
    k = len(poly)
    benchmark_bars(digits, "test_loss", ylabel="test cross-entropy", title="digits: test loss", ax=axes[k])
    benchmark_bars(digits, "test_accuracy", ylabel="test accuracy", title="digits: test accuracy", ax=axes[k + 1])
    lo = min(r.metrics["test_accuracy"].min() for r in digits)
    axes[k + 1].set_ylim(max(0.0, lo - 0.02), 1.0)
    for ax in axes[n:]:
        ax.set_visible(False)
    return finish(fig)




def benchmark_markdown(rows):
    """A markdown table from ``rows`` = [(task, metric label, [BenchmarkResult, ...], fmt), ...]:
    one line per method and task with the tuned learning rate and mean +- std over seeds."""
    lines = ["| task | method | tuned $\\eta$ | metric | mean | std | seeds |", "|---|---|---|---|---|---|---|"]
    for task, label, results, fmt, key in rows:
        for r in results:
            v = np.asarray(r.metrics[key], float)
            lines.append(f"| {task} | {r.method} | {r.best_eta:g} | {label} | {v.mean():{fmt}} | {v.std():{fmt}} | {len(v)} |")
    return "\n".join(lines)
