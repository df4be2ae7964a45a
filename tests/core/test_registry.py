"""Registries (zoo.core.registry): names, providers imported on first use, did-you-mean errors."""
from __future__ import annotations

import pytest

from zoo.core.registry import Registry


def test_registry_add_get_and_helpful_errors():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    reg.add("alpha", 1)  # the same entry again: a module imported twice
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("alpha", 2)
    reg.add("alpha", 2, replace=True)
    assert reg.get("alpha") == 2 and "alpha" in reg and reg.names() == ["alpha"] and len(reg) == 1
    with pytest.raises(KeyError, match=r"unknown widget 'alpah'; did you mean 'alpha'\? Available: alpha"):
        reg.get("alpah")
    with pytest.raises(KeyError, match=r"unknown widget 'zzz'\. Available: alpha"):
        reg.get("zzz")


def test_providers_are_imported_once_on_first_read(monkeypatch):
    imported = []
    monkeypatch.setattr("importlib.import_module", lambda name: imported.append(name))
    reg: Registry[int] = Registry("widget", providers=("a.b", "c"))
    assert reg.registered("x") is None and imported == []  # no import before a read
    reg.names()
    reg.names()
    assert imported == ["a.b", "c"]


def test_model_and_task_registries_suggest_names():
    from zoo import tasks
    from zoo.models import get_family

    with pytest.raises(KeyError, match="did you mean 'cgcnn'"):
        get_family("cgcn")
    with pytest.raises(KeyError, match="did you mean 'matbench_jdft2d'"):
        tasks.spec("matbench_jdft2")
