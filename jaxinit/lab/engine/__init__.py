"""Compiled programs over members (seeds x initializers x grid points): pure (plan, keys) -> arrays."""
