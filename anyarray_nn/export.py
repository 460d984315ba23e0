"""Export to ONNX by running the network's own forward code on ndonnx arrays.

`ndonnx <https://github.com/Quantco/ndonnx>`_ is an Array API library whose arrays record an
ONNX graph instead of computing. :func:`export_onnx` copies a network onto the ``ndonnx``
backend (its weights become constants), calls the same :meth:`NN.forward` that ``predict``
calls on a symbolic input of shape ``("N", n_features)``, and builds the model from what was
recorded. There is no converter repeating the math: a layer or activation of your own exports
when its forward is written against the Array API.

ndonnx wraps each matrix product and maximum in an ``If(size == 0)`` node whose other branch
handles empty arrays with about 150 nodes; :func:`simplify` keeps the real branch (ONNX's
``MatMul`` and ``ReduceMax`` already handle a batch of zero rows), drops what no output reads
and turns constants into initializers.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import numpy as np

from .backend import resolve
from .io import refuse_existing

#: The names of the ONNX model's input and outputs.
INPUT_NAME = "X"
#: The oldest ONNX opset an export can be written in (see :func:`export_onnx`).
MIN_OPSET = 20
OUTPUT_KINDS = ("proba", "label", "both")
INSTALL = "pip install 'anyarray_nn[onnx]' (ndonnx and onnx; onnxruntime to run the model)"


class ExportError(ValueError):
    """A network (or one of its components) cannot be exported to ONNX."""


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"ONNX export needs the package {module!r}: {INSTALL}.") from None


def _is_network(obj: Any) -> bool:
    # duck-typed: importing network here would make an import circle (NN.export calls us)
    return all(hasattr(obj, name) for name in ("layers", "output", "n_features", "copy"))


def _network_and_classes(model: Any) -> tuple[Any, list[Any] | None, str]:
    """The :class:`NN` behind ``model`` (itself, or a fitted estimator's ``net_``), the class
    names the labels stand for (``None``: the labels are the class indices), and what the
    outputs must match: ``"network"`` (``NN.predict``), ``"classifier"`` (``predict_proba``),
    ``"multilabel"`` or ``"regressor"`` (the estimator's ``predict``)."""
    if _is_network(model):
        metadata = getattr(model, "metadata", None)
        names = metadata.get("classes") if isinstance(metadata, dict) else None
        if names is not None and not isinstance(names, list | tuple):
            raise ExportError(
                f"net.metadata['classes'] must be a list of class names, got {names!r}."
            )
        return model, (list(names) if names is not None else None), "network"
    net = getattr(model, "net_", None)
    if not _is_network(net):
        raise ExportError(
            f"Cannot export {type(model).__name__}: pass an NN, or a fitted NNClassifier / "
            "NNRegressor (call fit first)."
        )
    if not net.is_classifier:
        return net, None, "regressor"
    if getattr(model, "_multilabel", False):
        return net, None, "multilabel"  # an indicator matrix: columns, not names
    classes = np.asarray(model.classes_).tolist()
    if len(classes) < 2:
        raise ExportError(f"Cannot export {type(model).__name__} fitted on one class only.")
    return net, classes, "classifier"


def _as_estimator(xp: Any, kind: str, probs: Any, n_outputs: int) -> Any:
    """The network's outputs as the estimator returns them: ``predict_proba``'s columns
    (``1 - p, p`` for one sigmoid unit; softmax rows renormalised) or 1-D values."""
    if kind == "classifier":
        if n_outputs == 1:  # (the traced shape may not know its width)
            return xp.concat([1.0 - probs, probs], axis=1)
        return probs / xp.sum(probs, axis=1, keepdims=True)
    if kind == "regressor" and n_outputs == 1:
        return probs[:, 0]
    return probs


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    dtype: Any = None,
    opset: int | None = None,
    outputs: str = "proba",
    input_scaling: tuple[Any, Any] | None = None,
    overwrite: bool = False,
) -> Any:
    """Write ``model`` as an ONNX file with a dynamic batch dimension; return the ModelProto.

    Args:
        model: an :class:`~anyarray_nn.NN`, or a fitted
            :class:`~anyarray_nn.sklearn.NNClassifier` / ``NNRegressor``.
        path: the ``.onnx`` file to write (an existing file is kept unless ``overwrite``).
        dtype: ``"float32"`` or ``"float64"`` for the model's input and arithmetic (default: the
            network's dtype).
        opset: the ONNX opset of the file, from :data:`MIN_OPSET` (20) to the newest the
            installed onnx knows (default: ndonnx's, 21 with ndonnx 0.23); another one is
            reached with ``onnx.version_converter``. Older opsets are refused: onnx's converter
            cannot take these graphs below 20 (it fails, or writes ``Cast`` nodes that opset
            does not allow), as the tests check with onnxruntime.
        outputs: ``"proba"``: one output, ``"probabilities"`` (classifiers) or ``"values"``
            (regressors); ``"label"``: the predicted label only; ``"both"``: ``"label"`` then the
            probabilities, like skl2onnx with ``zipmap=False``. Labels are class indices (argmax,
            or ``p > 0.5`` for sigmoid outputs), or the class names when the estimator (or
            ``net.metadata["classes"]``) has them. The names are also stored in the model's
            ``metadata_props`` (``classes``, JSON).
        input_scaling: ``(mean, scale)`` (scalars or per-feature arrays): the model then takes
            raw features and computes ``(x - mean) / scale`` first, as the command line's
            ``train`` did before the network saw them. Each must be a real scalar or hold one
            finite value per feature (in the export's dtype), and no scale may be 0.
        overwrite: replace an existing file at ``path``.

    Raises:
        ImportError: ndonnx or onnx is missing (the message says what to install).
        ExportError: a component cannot be traced (it names the component) or a bad argument:
            an opset outside the supported range, an ``input_scaling`` that is not a pair of
            finite scalars or per-feature arrays (or has a zero scale), class names whose
            number is not the network's number of classes.
    """
    if outputs not in OUTPUT_KINDS:
        raise ExportError(f"outputs={outputs!r}: use one of {', '.join(OUTPUT_KINDS)}.")
    net, classes, kind = _network_and_classes(model)
    if outputs != "proba" and not net.is_classifier:
        raise ExportError(
            f"outputs={outputs!r} needs a classifier (softmax or sigmoid output); this network's "
            f"output is {net.output.name!r}. Use outputs='proba' (its values)."
        )
    proto = build_model(
        net,
        dtype=dtype,
        outputs=outputs,
        classes=classes,
        opset=opset,
        scaling=input_scaling,
        kind=kind,
    )
    _write(proto, path, overwrite)
    return proto


def build_model(
    net: Any,
    *,
    dtype: Any = None,
    outputs: str = "proba",
    classes: list[Any] | None = None,
    opset: int | None = None,
    scaling: tuple[Any, Any] | None = None,
    kind: str = "network",
) -> Any:
    """The simplified ONNX ModelProto of ``net``'s forward (see :func:`export_onnx`)."""
    ndx = _require("ndonnx")
    _require("onnx")
    _check_opset(opset)
    _check_classes(net, classes)
    backend = resolve("ndonnx", dtype=dtype or net.backend.dtype_name)
    if scaling is not None:
        scaling = _checked_scaling(scaling, net.n_features, backend.dtype_name)
    traced = net.copy(backend=backend)
    # Each weight as its own constant in the graph, not a slice of the flat parameter vector
    # (which would leave Slice/Reshape nodes on constants for onnxruntime to fold every run).
    for (layer, name), weight in zip(traced.parameters(), net.get_weights(), strict=True):
        layer.params[name] = backend.asarray(weight)
    x = ndx.argument(shape=("N", net.n_features), dtype=backend.dtype)
    features = x
    if scaling is not None:
        mean, scale = scaling
        features = (x - ndx.asarray(mean)) / ndx.asarray(scale)
    probs = _as_estimator(traced.xp, kind, _trace(traced, features), net.n_outputs)
    named: dict[str, Any] = {}
    if outputs in ("label", "both"):
        named["label"] = _labels(ndx, traced, probs, classes, kind)
    if outputs in ("proba", "both"):
        named["probabilities" if net.is_classifier else "values"] = probs
    proto = _convert(simplify(ndx.build({INPUT_NAME: x}, named)), opset)
    _set_metadata(proto, net, classes)
    return proto


def _check_opset(opset: Any) -> None:
    """Refuse an opset that is not a whole number in the supported range (see
    :func:`export_onnx`)."""
    if opset is None:
        return
    import onnx

    newest = onnx.defs.onnx_opset_version()
    whole = isinstance(opset, int | np.integer) and not isinstance(opset, bool)
    if not whole or not MIN_OPSET <= int(opset) <= newest:
        raise ExportError(
            f"opset={opset!r}: anyarray_nn exports ONNX opsets {MIN_OPSET} to {newest} (the "
            f"newest this onnx {onnx.__version__} knows). onnx's version converter cannot take "
            f"these graphs below opset {MIN_OPSET}. Leave opset=None for ndonnx's default."
        )


def _check_classes(net: Any, classes: list[Any] | None) -> None:
    """Class names must be one flat list with one name per class of the network."""
    if classes is None or not net.is_classifier:
        return
    if net.output.name == "sigmoid" and net.n_outputs > 1:
        return  # multilabel: the labels are an indicator matrix, names are not used
    expected = 2 if net.n_outputs == 1 else net.n_outputs
    names = np.asarray(classes, dtype=object)
    if names.ndim != 1 or len(classes) != expected:
        found = f"{len(classes)} class names" if names.ndim == 1 else "class names not in a list"
        raise ExportError(
            f"Got {found} ({classes!r}), but the network has {expected} classes (output "
            f"{net.output.name!r}, {net.n_outputs} unit(s)): give one name per class, in order "
            "(net.metadata['classes'], or the estimator's classes_)."
        )


def _checked_scaling(scaling: Any, n_features: int, dtype_name: str) -> tuple[Any, Any]:
    """``input_scaling`` as two host arrays in ``dtype_name``, checked (see
    :func:`export_onnx`)."""
    from .backend import to_numpy

    if not isinstance(scaling, tuple | list) or len(scaling) != 2:
        raise ExportError(
            f"input_scaling must be a pair (mean, scale), got {type(scaling).__name__}."
        )
    arrays = []
    for name, value in zip(("mean", "scale"), scaling, strict=True):
        try:
            host = np.asarray(to_numpy(value))
        except Exception as exc:
            raise ExportError(f"input_scaling's {name} is not an array ({exc}).") from exc
        if host.dtype.kind not in "biuf":
            raise ExportError(f"input_scaling's {name} must be real numbers, got {host.dtype}.")
        if host.ndim > 1 or (host.ndim == 1 and host.shape[0] not in (1, n_features)):
            raise ExportError(
                f"input_scaling's {name} has shape {host.shape}: give a scalar or one value per "
                f"feature ({n_features},)."
            )
        with np.errstate(over="ignore", invalid="ignore"):
            cast = host.astype(dtype_name)
        if not np.all(np.isfinite(cast)):
            raise ExportError(
                f"input_scaling's {name} holds NaN or inf, or a value beyond {dtype_name}: the "
                "model would output NaN or inf for every row."
            )
        if name == "scale" and np.any(cast == 0):
            raise ExportError(
                "input_scaling's scale holds 0: (x - mean) / 0 is inf or NaN for every row. "
                "Use 1 for a constant feature (as the command line's --scale does)."
            )
        arrays.append(cast)
    return arrays[0], arrays[1]


def _convert(proto: Any, opset: int | None) -> Any:
    """``proto`` in the default domain's ``opset`` (unchanged for ``None``)."""
    if opset is None:
        return proto
    from onnx import version_converter

    try:
        return version_converter.convert_version(proto, int(opset))
    except Exception as exc:
        raise ExportError(
            f"Cannot express the model in ONNX opset {opset} ({type(exc).__name__}: {exc}). "
            "Leave opset=None for ndonnx's default, or pick a newer opset."
        ) from exc


def _trace(net: Any, x: Any) -> Any:
    """``net.forward(x)`` on the symbolic batch; a component that reads values back to the host
    (``float()``, ``bool()``, ``to_numpy``, a Python ``if`` on an array) is named in the error."""
    from .layers import Dense

    h = x
    for layer in net.layers:
        what = f"layer {type(layer).__name__}"
        if isinstance(layer, Dense):
            what += f" (activation {type(layer.activation).__name__} {layer.activation.name!r})"
        h = _traced_call(what, layer.forward, h)
    what = f"output activation {type(net.output).__name__} {net.output.name!r}"
    return _traced_call(what, net.output.forward, net.xp, h)


def _traced_call(what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise ExportError(
            f"Cannot export the {what}: its forward does something other than Array API "
            f"operations on the batch ({type(exc).__name__}: {exc}). A forward that reads "
            "values back to the host (float(), bool(), a Python if on an array, NumPy calls) "
            "cannot become a graph; write it with the namespace's functions (xp.where, ...)."
        ) from exc


def _labels(ndx: Any, net: Any, probs: Any, classes: list[Any] | None, kind: str) -> Any:
    """Labels from the probabilities, as ``predict_classes`` (argmax for softmax, ``p > 0.5``
    for sigmoid) or the estimator's ``predict`` give them; through a lookup in the class names
    when there are names."""
    xp = net.xp
    if kind == "multilabel" or (kind == "network" and net.output.name == "sigmoid"):
        index = xp.astype(probs > 0.5, xp.int64)
        if kind == "multilabel" or net.n_outputs > 1:
            return index  # an indicator matrix, as predict gives it
        index = index[:, 0]
    else:
        index = xp.argmax(probs, axis=1)
    if classes is None:
        return index
    names = np.asarray(classes)
    if names.dtype.kind not in "biufU":
        names = names.astype(str)
    return xp.take(ndx.asarray(names), index, axis=0)


def _set_metadata(proto: Any, net: Any, classes: list[Any] | None) -> None:
    from ._version import __version__

    entries = {
        "producer": f"anyarray_nn {__version__}",
        "output_activation": net.output.name,
        "n_features": str(net.n_features),
    }
    if classes is not None:
        entries["classes"] = json.dumps([_plain(c) for c in classes])
    proto.producer_name = "anyarray_nn"
    proto.producer_version = __version__
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _write(proto: Any, path: str | os.PathLike[str], overwrite: bool) -> None:
    """Write atomically; never replace an existing file unless asked to."""
    target = os.fspath(path)
    refuse_existing(target, overwrite)  # the rule of NN.save too
    temp = f"{target}.part-{os.getpid()}"
    try:
        with open(temp, "wb") as handle:
            handle.write(proto.SerializeToString())
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


# -- graph simplification ------------------------------------------------------------------------
def simplify(proto: Any) -> Any:
    """Keep the real branch of ndonnx's ``If(size == 0)`` nodes, forward ``Identity`` nodes,
    drop what no output reads and store ``Constant`` tensors as initializers. The model
    computes the same values (also for a batch of zero rows)."""
    onnx = _require("onnx")
    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    nodes: list[Any] = []
    for node in graph.node:
        branch = _real_branch(node, producers)
        if branch is None:
            nodes.append(node)
            continue
        nodes.extend(branch.node)
        nodes.append(onnx.helper.make_node("Identity", [branch.output[0].name], [node.output[0]]))
    nodes = _skip_identities(nodes, {o.name for o in graph.output})
    nodes = _live(nodes, {o.name for o in graph.output})
    nodes = _constants_to_initializers(graph, nodes, onnx)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return proto


def _real_branch(node: Any, producers: dict[str, Any]) -> Any:
    """The ``else`` graph of an ``If`` whose condition is ``Equal(<size product>, 0)`` (the
    branch that runs for a non-empty array), else ``None``."""
    if node.op_type != "If" or len(node.output) != 1:
        return None
    cond = producers.get(node.input[0])
    if cond is None or cond.op_type != "Equal":
        return None
    kinds = [getattr(producers.get(name), "op_type", None) for name in cond.input]
    if "Constant" not in kinds or not ({"Size", "Mul"} & set(kinds)):
        return None
    zero = producers[cond.input[kinds.index("Constant")]]
    if not _is_zero_constant(zero):
        return None
    branches = {a.name: a.g for a in node.attribute}
    branch = branches.get("else_branch")
    return branch if branch is not None and len(branch.output) == 1 else None


def _is_zero_constant(node: Any) -> bool:
    from onnx import numpy_helper

    for attribute in node.attribute:
        if attribute.name == "value":
            value = numpy_helper.to_array(attribute.t)
            return value.size == 1 and value.reshape(()) == 0
    return False


def _skip_identities(nodes: list[Any], keep: set[str]) -> list[Any]:
    """Read an ``Identity``'s input wherever its output was read (unless it is a graph
    output)."""
    alias: dict[str, str] = {}
    kept = []
    for node in nodes:
        if node.op_type == "Identity" and node.output[0] not in keep:
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            continue
        kept.append(node)
    for node in kept:
        _rename_inputs(node, alias)
    return kept


def _rename_inputs(node: Any, alias: dict[str, str]) -> None:
    for i, name in enumerate(node.input):
        if name in alias:
            node.input[i] = alias[name]
    for attribute in node.attribute:  # subgraphs read outer names too
        if attribute.HasField("g"):
            for inner in attribute.g.node:
                _rename_inputs(inner, alias)


def _live(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """The nodes an output depends on, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if not needed.intersection(node.output):
            continue
        kept.append(node)
        needed.update(_reads(node))
    return kept[::-1]


def _reads(node: Any) -> set[str]:
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        if attribute.HasField("g"):
            for inner in attribute.g.node:
                names |= _reads(inner)
    return names


def _constants_to_initializers(graph: Any, nodes: list[Any], onnx: Any) -> list[Any]:
    """Tensor ``Constant`` nodes become initializers (how ONNX files usually store weights)."""
    kept = []
    for node in nodes:
        tensors = [a.t for a in node.attribute if a.name == "value"]
        if node.op_type == "Constant" and tensors:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(tensors[0])
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            continue
        kept.append(node)
    return kept
