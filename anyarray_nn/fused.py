"""Optional fused optimizer updates: one kernel for a whole update where a library offers one.

The flat parameter vector makes an update a handful of whole-vector operations; on a GPU each is
still a kernel launch. PyTorch ships Adam and AdamW as single fused kernels
(``torch._fused_adam_`` / ``torch._fused_adamw_``, what ``torch.optim.Adam(fused=True)`` runs),
so on torch the whole update is one launch instead of twelve.

This is the one place besides :mod:`anyarray_nn.backend` with library-specific code, and it is
a fast path only: every fused form sits beside the generic Array API update in
:mod:`anyarray_nn.optimizers`, which is the reference the tests compare it with on every backend
where it exists. Set ``ENABLED = False`` to run the reference everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .optimizers import Optimizer

Array = Any

#: Use fused forms where they exist.
ENABLED = True


def update(opt: Optimizer, params: Array, grads: Array) -> Array | None:
    """Apply ``opt``'s update (``opt.t`` already counts it) in one fused kernel, in place, and
    return ``params``; ``None`` when no fused form applies (then the generic update runs)."""
    kind = getattr(opt, "fused_kind", None)
    if not ENABLED or kind is None:
        return None
    library = type(params).__module__.split(".")[0]
    form = _FORMS.get((library, kind))
    return None if form is None else form(opt, params, grads)


def _torch_adam(opt: Any, params: Array, grads: Array, decoupled: bool) -> Array | None:
    import torch  # present: params is a torch tensor

    if params.dtype not in (torch.float32, torch.float64) or params.device.type not in (
        "cpu",
        "cuda",
    ):
        return None
    steps = _step_counter(opt, torch, params)
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    maxes = [opt.state["max_exp_avg_sq"]] if opt.amsgrad else []
    kernel(
        [params],
        [grads],
        [opt.state["exp_avg"]],
        [opt.state["exp_avg_sq"]],
        maxes,
        [steps],
        lr=opt.lr,
        beta1=opt.beta1,
        beta2=opt.beta2,
        weight_decay=opt.weight_decay,
        eps=opt.eps,
        amsgrad=opt.amsgrad,
        maximize=False,
    )
    return params


def _step_counter(opt: Any, torch: Any, params: Array) -> Array:
    """The fused kernel reads the step count from a device tensor. It is kept beside the host
    counter ``opt.t`` (the truth) and advanced on the device, so no step copies it over; it is
    rebuilt (one copy) only when ``t`` moved by anything but a step (a loaded state)."""
    cached = opt.__dict__.get("_fused_steps")
    if cached is None or cached[0] != opt.t - 1 or cached[1].device != params.device:
        tensor = torch.full((), float(opt.t), dtype=torch.float32, device=params.device)
    else:
        tensor = cached[1]
        tensor += 1.0
    opt._fused_steps = (opt.t, tensor)
    return tensor


_FORMS: dict[tuple[str, str], Callable[[Any, Array, Array], Array | None]] = {
    ("torch", "adam"): lambda opt, p, g: _torch_adam(opt, p, g, decoupled=False),
    ("torch", "adamw"): lambda opt, p, g: _torch_adam(opt, p, g, decoupled=True),
}
