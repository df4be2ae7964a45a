"""The pretrained zoo: registry entries ``family.tag`` loaded in one line, in either backend.

    import zoo
    zoo.list_pretrained()                                  # ["cgcnn.embedded_dielectric_iso_v1", ...]
    model = zoo.load("cgcnn.embedded_dielectric_iso_v1", backend="jax")
    model.predict(["a.cif", structure, atoms])             # task units

The registry is data kept with each family (``zoo/models/<family>/pretrained.json``, ``registry``); files
come from the package copy, the cache or a verified download (``fetch``: ``ZOO_HOME``, ``ZOO_OFFLINE``,
``ZOO_BASE_URL``); ``load`` binds the weights to their featurisation and refuses any disagreement;
``python -m zoo.pretrained.cards`` writes the model cards and ``python -m zoo.pretrained.publish``
turns a finished run folder into an entry.
"""
from __future__ import annotations

from .fetch import PretrainedError, fetch, home, offline
from .load import PretrainedModel, describe, load
from .registry import Entry, RegistryError, get_entry, list_pretrained, reload


def download(name: str, retries: int = 2):
    """Fetch and verify an entry's files (the package copy counts); returns the weights stem used."""
    return fetch(get_entry(name), retries=retries)


__all__ = ["Entry", "PretrainedError", "PretrainedModel", "RegistryError", "describe", "download", "fetch", "get_entry",
           "home", "list_pretrained", "load", "offline", "reload"]
