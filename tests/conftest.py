"""The package changes no global JAX setting: the tests switch float64 on, as a user does."""

import jax

jax.config.update("jax_enable_x64", True)
