"""A string grammar for feature spaces made of point-group irreps, e.g. "16xA1g + 8xEg + 8xT1u".

Grammar (whitespace is free around every token)::

    spec  :=  ""  |  term ("+" term)*
    term  :=  [mult ("x" | "×" | "*")] label        mult: a non-negative integer, default 1
    label :=  a Mulliken label of the group (ASCII primes A', A''; ′ and ″ are accepted)

Terms keep their order (a feature layout is an ordered direct sum); :meth:`GIrreps.simplify`
merges repeated labels and sorts them in the group's irrep order. A spec is bound to one group and
validated against it; ``str(GIrreps)`` gives back the canonical spelling ``"16xA1g + 8xEg"``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .irreps import canonical_label

_TERM = re.compile(r"^(?:(\d+)\s*[x×*]\s*)?([A-Za-z0-9'′″]+)$")


@dataclass(frozen=True)
class GIrreps:
    """An ordered direct sum of irreps of one point group: ((multiplicity, label), ...)."""

    group: str  # HM symbol
    terms: tuple[tuple[int, str], ...]

    @classmethod
    def parse(cls, spec: "str | GIrreps", group) -> "GIrreps":
        """Parse ``spec`` for ``group`` (a PointGroup or a name); unknown labels raise ValueError."""
        from . import point_group

        G = point_group(group) if isinstance(group, str) else group
        if isinstance(spec, GIrreps):
            if spec.group != G.name:
                raise ValueError(f"spec is for {spec.group}, not {G.name}")
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"an irreps spec is a string, got {type(spec).__name__}")
        terms: list[tuple[int, str]] = []
        body = spec.strip()
        if body:
            for raw in body.split("+"):
                tok = raw.strip()
                m = _TERM.match(tok)
                if m is None:
                    raise ValueError(f"cannot parse term {tok!r} of {spec!r} (expected e.g. '8xEg')")
                mult = int(m.group(1)) if m.group(1) is not None else 1
                label = canonical_label(m.group(2))
                if label not in G.irreps:
                    raise ValueError(f"{label!r} is not an irrep of {G.name}; irreps: {', '.join(G.irreps)}")
                terms.append((mult, label))
        return cls(G.name, tuple(terms))

    def __str__(self) -> str:
        return " + ".join(f"{m}x{lab}" for m, lab in self.terms)

    def __iter__(self):
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def dim(self) -> int:
        """Total dimension Σ m·d."""
        from . import point_group

        G = point_group(self.group)
        return sum(m * G.dim(lab) for m, lab in self.terms)

    @property
    def num_irreps(self) -> int:
        """Number of irrep copies Σ m."""
        return sum(m for m, _ in self.terms)

    def simplify(self) -> "GIrreps":
        """Merge repeated labels, drop zero multiplicities, sort in the group's irrep order."""
        from . import point_group

        G = point_group(self.group)
        counts: dict[str, int] = {}
        for m, lab in self.terms:
            counts[lab] = counts.get(lab, 0) + m
        return GIrreps(self.group, tuple((counts[lab], lab) for lab in G.irreps if counts.get(lab)))

    def __add__(self, other: "GIrreps") -> "GIrreps":
        if not isinstance(other, GIrreps) or other.group != self.group:
            return NotImplemented
        return GIrreps(self.group, self.terms + other.terms)


def parse_irreps(spec: str, group) -> GIrreps:
    return GIrreps.parse(spec, group)


def format_irreps(terms, group=None) -> str:
    """Canonical string of ((m, label), ...) or a GIrreps; validated if ``group`` is given."""
    if isinstance(terms, GIrreps):
        return str(terms)
    text = " + ".join(f"{int(m)}x{canonical_label(lab)}" for m, lab in terms)
    if group is not None:
        GIrreps.parse(text, group)
    return text
