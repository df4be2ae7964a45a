"""Thin per-backend helpers (array conversion, segment ops). ``torch.py`` and ``jax.py`` mirror each other."""
