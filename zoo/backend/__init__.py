"""Framework glue, one module per backend that mirror each other name for name.

``zoo.backend.torch`` and ``zoo.backend.jax`` each provide:

- ``to_torch`` / ``to_jax``: a ``zoo.graphs.Batch`` as framework arrays (dtypes from the batch fields);
- the **array operations** that backend-neutral model math (``zoo.nn`` and each family's ``core.py``)
  calls through the namespace it is handed (``xp``), where torch and jax.numpy differ in name or
  semantics: ``concat``, ``split``, ``segment_sum``, ``segment_mean``, ``segment_max`` (0 on empty segments), ``sigmoid``, ``softplus``
  (torch's, linear above 20), ``silu``, ``log_softmax``, ``rsqrt``, ``norm``, ``where``,
  ``stop_gradient``, ``const`` (a numpy constant on the device and in the dtype of an array),
  ``add_at`` (functional scatter-add along an axis), ``take`` (gather along an axis), ``linear``
  (torch's ``Linear``: x W^T + b with W (out, in)), ``astype``
  (the array API's cast, dtype taken from an array of the same backend), and the numpy names both
  share (``exp``, ``log``, ``log1p``, ``sin``, ``tanh``, ``einsum``, ``zeros_like``, ``ones_like``, ``sqrt``,
  ``maximum``, ``minimum``), ``cumsum`` (along an axis), ``solve`` (batched dense linear solve) and
  ``value_and_grad`` (a scalar function's value and gradient as numpy, for an optimiser written in numpy);
- ``NAME``: "torch" or "jax".

``OPS`` lists the names; ``tests/backend/test_ops.py`` checks that both modules define every one and
that they agree numerically. ``zoo.backend.params`` converts weights between the two.
"""

OPS = (
    "NAME", "concat", "split", "segment_sum", "segment_mean", "segment_max", "sigmoid", "softplus", "silu", "log_softmax", "rsqrt",
    "norm", "where", "stop_gradient", "const", "add_at", "exp", "log1p", "sin", "tanh", "einsum", "zeros_like",
    "ones_like", "sqrt", "maximum", "minimum", "log", "cumsum", "solve", "value_and_grad", "astype", "take", "linear", "spherical_harmonics", "switch", "zeros",
)
