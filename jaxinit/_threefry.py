"""Temporary alias of :mod:`jaxinit._prng` (the key scheme's one home) while callers move to it."""

from jaxinit._prng import bits, check_key, fold_in, threefry2x32  # noqa: F401
