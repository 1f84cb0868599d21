"""Run profiles: ``quick`` (the default; tests, CI and the book's own build) and ``paper``.

The profile comes from the ``NNCOSMO_PROFILE`` environment variable unless a name is given.
"""

from __future__ import annotations

import os

PROFILES = ("quick", "paper")
ENV_VAR = "NNCOSMO_PROFILE"


def get_profile(name: str | None = None) -> str:
    """Return the active profile name, validated (``ValueError`` naming ``profile`` otherwise)."""
    if name is None:
        name = os.environ.get(ENV_VAR, "quick")
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {name!r} (set via {ENV_VAR} or --profile)")
    return name
