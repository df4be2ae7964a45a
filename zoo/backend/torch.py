"""PyTorch side of the batch contract (``zoo.graphs.batch``) and the array operations model math needs
(the list and their meaning: ``zoo.backend``; ``zoo/backend/jax.py`` mirrors this file)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zoo.graphs.batch import field_of

NAME = "torch"


def to_torch(batch: Mapping[str, np.ndarray], dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A ``Batch`` as torch tensors: index and count arrays int64, masks bool, the rest ``dtype``."""
    out = {}
    for k, v in batch.items():
        kind = field_of(k).kind
        t = torch.from_numpy(np.asarray(v))
        t = t.long() if kind == "int" else t.bool() if kind == "bool" else t.to(dtype)
        out[k] = t.to(device, non_blocking=True)
    return out


# ------------------------------------------------------------------------------ array operations
exp, log1p, sin, tanh, sqrt, einsum = torch.exp, torch.log1p, torch.sin, torch.tanh, torch.sqrt, torch.einsum
zeros_like, ones_like, maximum, where, sigmoid, rsqrt = torch.zeros_like, torch.ones_like, torch.maximum, torch.where, torch.sigmoid, torch.rsqrt
minimum, log = torch.minimum, torch.log


def cumsum(x: torch.Tensor, axis: int = 0) -> torch.Tensor:
    return torch.cumsum(x, dim=axis)


def solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x with a @ x = b, batched over leading axes (LU with partial pivoting, as jax.numpy.linalg.solve)."""
    return torch.linalg.solve(a, b)
silu, softplus = F.silu, F.softplus  # torch's softplus: x itself above 20 (jax.py matches it exactly)


def concat(xs: Sequence[torch.Tensor], axis: int = 0) -> torch.Tensor:
    return torch.cat(list(xs), dim=axis)


def split(x: torch.Tensor, sizes: Sequence[int], axis: int = 0) -> list[torch.Tensor]:
    """Pieces of the given sizes along ``axis`` (sizes, not cut points, in both backends)."""
    return list(torch.split(x, list(sizes), dim=axis))


def log_softmax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return F.log_softmax(x, dim=axis)


def norm(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return torch.linalg.norm(x, dim=axis)


def stop_gradient(x: torch.Tensor) -> torch.Tensor:
    return x.detach()


def value_and_grad(fn, x: torch.Tensor, *args) -> tuple[float, np.ndarray]:
    """(fn(x, *args), d fn / d x as float64 numpy) for a scalar-valued ``fn``: what an optimiser written in
    numpy (``zoo.models.tfn.prefit``) needs from the backend's autodiff."""
    x = x.detach().requires_grad_(True)
    value = fn(x, *args)
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad.detach().cpu().numpy().astype(np.float64)


_CONSTANTS: dict[tuple[int, torch.dtype, torch.device], tuple[np.ndarray, torch.Tensor]] = {}


def const(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A numpy constant (a basis, a table) as a tensor in ``like``'s dtype (floats) and device, cached
    per array object, so a forward pass does not copy it from the host every step."""
    if torch.compiler.is_compiling():
        # torch.compile traces a numpy array as a tensor but not the cache below (ndarray.dtype): a
        # graph break per constant would cut a model into hundreds of graphs
        t = torch.as_tensor(array)
        return t.to(device=like.device, dtype=like.dtype if t.is_floating_point() else torch.bool if t.dtype == torch.bool else torch.int64)
    arr = np.asarray(array)
    dtype = like.dtype if arr.dtype.kind == "f" else torch.int64 if arr.dtype.kind in "iu" else torch.bool
    key = (id(array), dtype, like.device)
    hit = _CONSTANTS.get(key)
    if hit is None or hit[0] is not array:  # the array object is kept alive in the cache, so ids stay unique
        hit = (array, torch.as_tensor(np.array(arr), dtype=dtype, device=like.device))
        if len(_CONSTANTS) > 4096:
            _CONSTANTS.clear()
        _CONSTANTS[key] = hit
    return hit[1]


def add_at(x: torch.Tensor, index: torch.Tensor, values: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """x with ``values`` added at ``index`` along ``axis`` (out of place; repeated indices accumulate)."""
    return x.index_add(axis, index, values)


def segment_sum(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    out = x.new_zeros((n,) + tuple(x.shape[1:]))
    return out.index_add_(0, index, x)


def segment_max(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Largest entry of each segment, per column; 0 for an empty segment (as jax.py). Gradient: shared
    equally between tied maxima (as jax's)."""
    where_ = index.view((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
    return x.new_zeros((n,) + tuple(x.shape[1:])).scatter_reduce(0, where_, x, reduce="amax", include_self=False)


def segment_mean(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    s = segment_sum(x, index, n)
    # Counting with index_add (not bincount, whose output shape depends on the data) keeps
    # torch.compile graphs static.
    cnt = segment_sum(torch.ones_like(index, dtype=x.dtype), index, n).clamp(min=1)
    return s / cnt.view((-1,) + (1,) * (x.dim() - 1))


def astype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The array API's ``astype``: ``x`` in ``dtype`` (e.g. a bool mask as 0/1 weights in a float dtype)."""
    return x.to(dtype)


def take(x: torch.Tensor, index: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """The entries of ``x`` at ``index`` along ``axis`` (a row gather). ``index_select`` rather than
    ``x[index]``: its backward is a scatter-add, where ``x[index]``'s is an accumulating ``index_put_``,
    about twice as slow forward + backward on CPU for CGCNN's gathers (846 atoms -> 10k edges x 128)."""
    return x.index_select(axis, index)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """torch's ``Linear`` as a function: x W^T + b, W of shape (out, in). ``F.linear`` fuses the bias into
    the matrix product (addmm): forward + backward on CGCNN's edges (10k x 41 -> 128) took about 15 % less
    time than ``x @ W.T + b`` on CPU."""
    return F.linear(x, weight, bias)


_SH_MODULES: dict[int, torch.nn.Module] = {}


def spherical_harmonics(lmax: int, vectors: torch.Tensor) -> torch.Tensor:
    """e3nn's real spherical harmonics Y^l(r̂), l = 0..lmax concatenated (E, (lmax+1)^2), of unnormalised
    vectors (E, 3), ``normalization="component"`` (|Y^l|^2 = 2l+1). The e3nn module is built once per
    lmax (imported here, not at the top: only the equivariant families need e3nn), so torch.compile
    traces no e3nn Irreps bookkeeping."""
    module = _SH_MODULES.get(lmax)
    if module is None:
        from e3nn import o3

        module = _SH_MODULES[lmax] = o3.SphericalHarmonics(list(range(lmax + 1)), True, "component")
    return module(vectors)


class Parameters(torch.nn.Module):
    """Named parameters and nothing else, drawn N(0, 1) (e3nn's initialisation: the normalisation is in
    the forward pass): the torch side of a family whose math takes parameters as arrays by name."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], zeros: bool = False) -> None:
        super().__init__()
        for name, shape in shapes.items():  # zeros: for a learned offset that must start neutral
            self.register_parameter(name, torch.nn.Parameter(torch.zeros(shape) if zeros else torch.randn(shape)))

    def arrays(self) -> dict[str, torch.Tensor]:
        return dict(self.named_parameters(recurse=False))


def declare_parameters(module: torch.nn.Module, layout: Mapping[str, tuple[int, ...]]) -> None:
    """Add every parameter of a weight layout ``{torch name: shape}`` to ``module`` as nested submodules,
    so that ``module.state_dict()`` names are exactly the layout's (``"oh.layers.0.lin1.weight"``); each is
    drawn N(0, 1) (e3nn's initialisation: the normalisation is in the forward pass). The math then takes
    ``dict(module.named_parameters())``. Mirrors ``zoo.backend.jax.declare_parameters``."""
    for name, shape in layout.items():
        *path, leaf = name.split(".")
        owner = module
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, torch.nn.Module())
            owner = getattr(owner, part)
        owner.register_parameter(leaf, torch.nn.Parameter(torch.randn(shape)))


def switch(index, branches: Sequence):
    """``branches[index]()``: only the chosen branch runs (the index is read on the host)."""
    return branches[int(index)]()


def zeros(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Zeros of ``shape`` in ``like``'s dtype and device."""
    return torch.zeros(tuple(shape), dtype=like.dtype, device=like.device)


def state_arrays(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's ``state_dict`` as numpy arrays (the weight format of ``zoo.core.weights``)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_state_arrays(model: torch.nn.Module, state: Mapping[str, np.ndarray], check) -> torch.nn.Module:
    """Load numpy (or torch) arrays into ``model`` in its own dtypes, after ``check(config, state)`` (the
    family's clear ``WeightsError`` when names or shapes differ)."""
    check(model.config, state)
    own = model.state_dict()
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)).to(dtype=own[k].dtype) for k, v in state.items()}, strict=True)
    return model
