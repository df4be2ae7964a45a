"""The benchmark suite as a product: every registered family in every backend, side by side.

``zoo bench`` (``zoo.bench.run``) trains each family briefly on an embedded task and measures accuracy
(next to the floor), equivariance (float64 and float32), backend parity, symmetry violation,
parameters, throughput and compile time, then prints one table and writes it under ``results/bench/``
(``zoo.bench.table``: JSON with provenance, markdown, a plot). ``zoo bench gate`` (``zoo.bench.gate``)
is the performance gate the test command runs: ratios of model timings to a calibration workload against
the committed baseline, symmetry bounds, and accuracy within seed noise.

Modules: ``plan`` (what runs: tasks and recipes), ``measure`` (the measurements, also used by the asv
benchmarks), ``table`` (the outputs), ``run`` (the main job), ``gate`` (the performance gate).
This layer sits above ``zoo.reports`` and below ``zoo.cli``; it imports no framework at import time.
"""
