"""Optimizer update kernels: one kernel for a whole update where a library offers one.

("Fused" in this package names a loss computed with its output activation, see
:mod:`anyarray_nn.losses`; a whole optimizer update in one library kernel is an *update
kernel*.)

The flat parameter vector makes an update a handful of whole-vector operations; on a GPU each is
still a kernel launch. PyTorch ships Adam and AdamW as single fused kernels
(``torch._fused_adam_`` / ``torch._fused_adamw_``, what ``torch.optim.Adam(fused=True)`` runs),
so on torch the whole update is one launch instead of twelve.

A kernel is chosen **once per fit** (:func:`kernel_for`), through the backend record
(:attr:`~anyarray_nn.backend.BackendInfo.update_kernel`, which maps an update's kind to the
library's kernel), and only for an optimizer whose update is exactly the built-in one: a
subclass that overrides ``update``, ``apply``, ``scalars``, ``scalars_at`` or the bias
corrections runs its own code on every backend. The kernels are a fast path only: each sits
beside the generic Array API update in :mod:`anyarray_nn.optimizers`, the reference the tests
compare it with. Set ``ENABLED = False`` to run the reference everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .optimizers import Optimizer

Array = Any
#: ``kernel(opt, params, grads, state, count, lr) -> params``: one update, in place.
Kernel = Callable[..., Array]

#: Use update kernels where they exist.
ENABLED = True

#: The methods that make an update what it is: a kernel replaces them only where none is
#: overridden.
_UPDATE_METHODS = ("update", "apply", "scalars", "scalars_at", "advance", "_bias_corrections")


def kernel_for(opt: Optimizer, info: Any, params: Array) -> Kernel | None:
    """The update kernel for ``opt``'s update on ``params`` (arrays of the library whose
    backend record is ``info``), or ``None`` (the generic update runs): none exists, or
    ``opt``'s class changes the update."""
    kind = getattr(opt, "kernel_kind", None)
    if not ENABLED or kind is None or info is None or not _exactly_builtin(type(opt)):
        return None
    return info.update_kernel(kind, params)


def _exactly_builtin(cls: type) -> bool:
    """Whether ``cls`` updates exactly as the built-in class that declares its
    ``kernel_kind``."""
    owner = next(c for c in cls.__mro__ if "kernel_kind" in c.__dict__)
    if owner.__module__ != "anyarray_nn.optimizers":
        return False
    return all(getattr(cls, m, None) is getattr(owner, m, None) for m in _UPDATE_METHODS)


def torch_kernel(kind: str, params: Array) -> Kernel | None:
    """torch's fused Adam or AdamW for ``params``' dtype and device (the torch record's
    ``update_kernel``), or ``None``."""
    import torch  # present: params is a torch tensor

    if kind not in ("adam", "adamw") or params.dtype not in (torch.float32, torch.float64):
        return None
    if params.device.type not in ("cpu", "cuda"):
        return None
    fn = torch._fused_adamw_ if kind == "adamw" else torch._fused_adam_
    return lambda opt, p, g, state, count, lr: _torch_adam(fn, opt, p, g, state, count, lr)


def _torch_adam(fn: Any, opt: Any, p: Array, g: Array, state: Any, count: Any, lr: Any) -> Array:
    """One fused Adam/AdamW step, in place. The kernel reads the step count from a device
    tensor: made from the host counter by a fill (a kernel argument, not a copy), or cast
    from the device counter."""
    import torch

    if hasattr(count, "shape"):
        steps = count.to(torch.float32)
    else:
        steps = torch.full((), float(count), dtype=torch.float32, device=p.device)
    maxes = [state["max_exp_avg_sq"]] if opt.amsgrad else []
    fn(
        [p],
        [g],
        [state["exp_avg"]],
        [state["exp_avg_sq"]],
        maxes,
        [steps],
        lr=lr,
        beta1=opt.beta1,
        beta2=opt.beta2,
        weight_decay=opt.weight_decay,
        eps=opt.eps,
        amsgrad=opt.amsgrad,
        maximize=False,
    )
    return p
