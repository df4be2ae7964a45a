"""Allow-lists for JSON that names classes: data files never choose what code runs.

pymatgen, matminer and matbench serialise objects as dicts with ``"@module"`` and ``"@class"`` keys, and
their decoder (monty's ``MontyDecoder``, also inside ``Structure.from_dict`` for site properties) imports
whatever module such a dict names. A data file that says ``{"@module": "some.module", ...}`` would thus
run that module's code while it is being read. crystal-zoo reads data as plain JSON, then checks every
such dict against the short list of classes the file may contain (``check_classes``) before anything
turns it into an object, and refuses the file otherwise, naming the file, the place and the class.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

MODULE_KEY, CLASS_KEY = "@module", "@class"


class UnsafeDataError(ValueError):
    """A data file names a class outside the allow-list of what it may contain."""


def _location(path: tuple) -> str:
    return "".join(f"[{p!r}]" for p in path) or "<top level>"


def find_classes(obj: Any) -> Iterable[tuple[tuple, str | None, str | None]]:
    """Every ``(path, module, class)`` of the dicts in ``obj`` that carry ``@module`` or ``@class``."""
    stack: list[tuple[tuple, Any]] = [((), obj)]
    while stack:  # iterative: a deeply nested file must not hit the recursion limit
        path, o = stack.pop()
        if isinstance(o, dict):
            if MODULE_KEY in o or CLASS_KEY in o:
                yield path, o.get(MODULE_KEY), o.get(CLASS_KEY)
            stack.extend((path + (k,), v) for k, v in o.items())
        elif isinstance(o, list):
            stack.extend((path + (i,), v) for i, v in enumerate(o))


def _refuse(source: str, where: str, module: Any, cls: Any, allowed: Mapping[str, Iterable[str]]) -> UnsafeDataError:
    names = sorted(f"{m}.{c}" for m, cs in allowed.items() for c in cs)
    return UnsafeDataError(
        f"{source}: {where} names the class {module}.{cls}, which this file may not contain (allowed: "
        f"{', '.join(names) or 'none'}); crystal-zoo does not import what a data file names. Re-create the file "
        "from trusted data, or convert that entry to one of the allowed classes."
    )


def check_classes(obj: Any, allowed: Mapping[str, Iterable[str]], source: str) -> None:
    """Raise ``UnsafeDataError`` unless every class ``obj`` names is in ``allowed`` ({module: classes})."""
    allowed_sets = {m: set(cs) for m, cs in allowed.items()}
    for path, module, cls in find_classes(obj):
        if not isinstance(module, str) or cls not in allowed_sets.get(module, ()):
            raise _refuse(source, _location(path), module, cls, allowed)


def object_hook(allowed: Mapping[str, Iterable[str]], source: str):
    """A ``json.load(object_hook=...)`` that checks each dict as it is parsed, as ``check_classes`` does
    (no second walk over a large file); use it where the whole file is read at once."""
    allowed_sets = {m: set(cs) for m, cs in allowed.items()}

    def hook(d: dict) -> dict:
        if MODULE_KEY in d or CLASS_KEY in d:
            module, cls = d.get(MODULE_KEY), d.get(CLASS_KEY)
            if not isinstance(module, str) or cls not in allowed_sets.get(module, ()):
                raise _refuse(source, "an entry", module, cls, allowed)
        return d

    return hook
