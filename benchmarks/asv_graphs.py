"""asv: featurisation speed, ``zoo.graphs.build_graphs`` without cache on the suite's 200 crystals.

Parameterised by graph rule ("cgcnn": the 12 nearest within the radius; "radius": every neighbour
within it) and radius (5 Å, TFN's default; 8 Å, CGCNN's). Each call validates the structures, hashes
them and builds every neighbour list (the work the on-disk cache saves). ``track_edges_per_atom``
records the graph size that goes with each timing (mean in-degree).
"""
from __future__ import annotations

from benchmarks import asv_models

RULES = ["cgcnn", "radius"]
RADII = [5.0, 8.0]  # Å


class BuildGraphs:
    params = [RULES, RADII]
    param_names = ["rule", "radius"]
    timeout = asv_models.TIMEOUT

    def setup(self, rule, radius):
        from zoo.graphs import GraphSpec

        self.structures = asv_models.cached(("structures",), asv_models.pool)
        self.spec = GraphSpec(rule=rule, radius=radius)

    def _build(self):
        from zoo.graphs import build_graphs

        # on_error="skip": at 5 Å a sparse crystal can have an isolated atom; it counts as attempted work.
        return build_graphs(self.structures, self.spec, cache=False, progress=False, on_error="skip")

    def time_build_graphs(self, rule, radius):
        self._build()

    def track_edges_per_atom(self, rule, radius):
        graphs, _ = self._build()
        graphs = [g for g in graphs if g is not None]
        return sum(g.n_edges for g in graphs) / max(sum(g.n_nodes for g in graphs), 1)

    track_edges_per_atom.unit = "edges per atom"
