"""The laboratory: config -> engine -> store -> figures, composed by ``run``."""
