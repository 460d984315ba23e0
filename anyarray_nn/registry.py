"""One registration mechanism for every named component.

Activations, losses, initializers, optimizers, learning-rate schedules, callbacks and layers are
each kept in a :class:`Registry`: a catalogue from names to classes (or, for initializers,
functions), in the spirit of Thinc's ``registry``. Everything that turns a name into an object
goes through it: ``NN(activation="tanh")``, ``fit(optimizer="adam")``, loading a model file, the
command line's choices and the scikit-learn estimators' parameter checks. There is no second list
of names anywhere.

A class registers itself by setting ``name``::

    class Swish(Activation):
        name = "swish"                   # now NN(..., activation="swish") works, and saves/loads
        def forward(self, xp, z): ...
        def derivative(self, xp, z, a): ...

(:class:`Component.__init_subclass__` does it), and functions register with the decorator::

    @registry.initializers.register("orthogonal")
    def orthogonal(rng, fan_in, fan_out): ...

Names follow one rule (:func:`normalise`): case, ``_``, ``-``, ``.`` and spaces are ignored, so
``"leaky_relu"``, ``"LeakyReLU"`` and ``"leaky-relu"`` are the same name.

A component's ``config()`` is ``{"name": ..., **constructor arguments}``, read back from the
attributes of the same name (scikit-learn's ``get_params`` convention), and
``Registry.from_config`` rebuilds it. This is how a model file describes its parts without ever
storing code.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from functools import partial
from typing import Any, ClassVar

__all__ = [
    "Component",
    "Registry",
    "activations",
    "callbacks",
    "initializers",
    "layers",
    "losses",
    "normalise",
    "optimizers",
    "schedules",
]


def normalise(name: str) -> str:
    """The one rule for component names: lower case, without ``_``, ``-``, ``.`` or spaces."""
    return "".join(ch for ch in name.lower() if ch not in "_-. ")


class Registry:
    """A catalogue of one kind of component, by name.

    Args:
        kind: what the entries are, for messages (``"activation"``, ``"optimizer"``, ...).
        default: the name :meth:`get` uses for ``None`` (``None``: no default).
    """

    def __init__(self, kind: str, default: str | None = None) -> None:
        self.kind = kind
        self.default = default
        #: The family's base class (set by :class:`Component`); ``None`` for functions.
        self.base: type | None = None
        self._entries: dict[str, Any] = {}  # normalised name -> class or function
        self._names: dict[str, str] = {}  # normalised name -> name as registered
        self._aliases: dict[str, str] = {}  # normalised alias -> normalised name
        self._alias_names: dict[str, str] = {}  # normalised alias -> alias as registered

    # -- registering -------------------------------------------------------------------------
    def register(self, name: str, entry: Any = None, *, aliases: tuple[str, ...] = ()) -> Any:
        """Register ``entry`` (a class or function) as ``name``; without ``entry``, a decorator.

        Registering a different object under a taken name (or alias) is an error; registering
        the same class again (a re-run notebook cell, a reloaded module) replaces it.
        """
        if entry is None:
            return lambda obj: self.register(name, obj, aliases=aliases)
        if not isinstance(name, str) or not normalise(name):
            raise ValueError(f"A {self.kind} name must be a non-empty string, got {name!r}.")
        key = normalise(name)
        for taken in (key, *map(normalise, aliases)):
            owner = self._entries.get(self._aliases.get(taken, taken))
            if owner is not None and not _same_definition(owner, entry):
                raise ValueError(
                    f"The {self.kind} name {taken!r} is already registered to "
                    f"{_qualname(owner)}; give {_qualname(entry)} another name."
                )
        self._entries[key] = entry
        self._names[key] = name
        for alias in aliases:
            self._aliases[normalise(alias)] = key
            self._alias_names[normalise(alias)] = alias
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (e.g. a test's or a notebook's temporary component)."""
        key = self._key(name)
        del self._entries[key], self._names[key]
        self._aliases = {a: k for a, k in self._aliases.items() if k != key}
        self._alias_names = {a: n for a, n in self._alias_names.items() if a in self._aliases}

    def alias(self, alias: str, name: str) -> None:
        """Make ``alias`` another name for the registered ``name``."""
        key = self._key(name)
        taken = normalise(alias)
        if taken in self._entries and taken != key:
            raise ValueError(f"{alias!r} is already a {self.kind} name.")
        if self._aliases.get(taken, key) != key:  # re-pointing would change saved models
            raise ValueError(
                f"{alias!r} is already an alias of the {self.kind} "
                f"{self._names[self._aliases[taken]]!r}; choose another alias."
            )
        self._aliases[taken] = key
        self._alias_names[taken] = alias

    # -- looking up --------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The registered names (without aliases), in registration order."""
        return list(self._names.values())

    def aliases(self) -> dict[str, str]:
        """``{alias: name}`` for every alias."""
        return {self._alias_names[a]: self._names[key] for a, key in self._aliases.items()}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._resolve(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Any:
        """Read-only mapping access: ``registry["relu"]`` is the registered class."""
        try:
            return self.lookup(name)
        except ValueError as exc:
            raise KeyError(name) from exc

    def keys(self) -> list[str]:
        return self.names()

    def items(self) -> list[tuple[str, Any]]:
        return [(self._names[key], entry) for key, entry in self._entries.items()]

    def _resolve(self, name: str) -> str | None:
        key = normalise(name)
        key = self._aliases.get(key, key)
        return key if key in self._entries else None

    def _key(self, name: str) -> str:
        key = self._resolve(name) if isinstance(name, str) else None
        if key is None:
            raise ValueError(
                f"Unknown {self.kind} {name!r}. Valid names: {', '.join(self.names())}"
                + (f" (aliases: {self._alias_text()})." if self._aliases else ".")
            )
        return key

    def _alias_text(self) -> str:
        return ", ".join(f"{a} = {n}" for a, n in self.aliases().items())

    def canonical(self, name: str) -> str:
        """The registered spelling of ``name`` (an alias gives its target)."""
        return self._names[self._key(name)]

    def lookup(self, name: str) -> Any:
        """The class or function registered as ``name`` (ValueError naming the valid ones)."""
        return self._entries[self._key(name)]

    def name_of(self, entry: Any) -> str | None:
        """The name ``entry`` (a class or function) is registered under, else ``None``."""
        for key, registered in self._entries.items():
            if registered is entry:
                return self._names[key]
        return None

    def parameters(self, name: str) -> list[str]:
        """Constructor (or function) keyword parameters of ``name``."""
        return _keyword_parameters(self.lookup(name))

    # -- building ----------------------------------------------------------------------------
    def get(self, spec: Any = None, **kwargs: Any) -> Any:
        """An object from a name, a config dict, a class, or an instance (returned as is).

        ``kwargs`` go to the constructor (or are bound to a registered function). ``None``
        means the registry's default.
        """
        if spec is None:
            if self.default is None:
                raise ValueError(f"No {self.kind} given. Valid names: {', '.join(self.names())}.")
            spec = self.default
        if isinstance(spec, dict):
            return self.from_config({**spec, **kwargs})
        if isinstance(spec, str):
            return _build(self.lookup(spec), kwargs, self.kind)
        base = self.base
        if isinstance(spec, type) and (base is None or issubclass(spec, base)):
            return _build(spec, kwargs, self.kind)
        if base is None and (inspect.isroutine(spec) or isinstance(spec, partial)):
            return _build(spec, kwargs, self.kind)
        if base is None or not isinstance(spec, base):
            what = f"an {base.__name__} object" if base is not None else "a function"
            raise TypeError(
                f"A {self.kind} must be a name ({', '.join(self.names())}), {what} or None; "
                f"got {type(spec).__name__}."
            )
        if kwargs:
            raise ValueError(
                f"Got a {self.kind} object {spec!r} and arguments {sorted(kwargs)}: pass the "
                "arguments to its constructor instead."
            )
        return spec

    def from_config(self, config: dict[str, Any]) -> Any:
        """Rebuild an object from ``{"name": ..., **arguments}`` (what ``config()`` gives)."""
        if not isinstance(config, dict) or not isinstance(config.get("name"), str):
            raise ValueError(f"A {self.kind} config is a dict with a 'name' key, got {config!r}.")
        kwargs = dict(config)
        return self.get(kwargs.pop("name"), **kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def _keyword_parameters(entry: Any) -> list[str]:
    target = entry.__init__ if isinstance(entry, type) else entry
    params = list(inspect.signature(target).parameters.values())
    skip = 1 if isinstance(entry, type) else 0  # self
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params[skip:] if p.kind in kinds]


def _build(entry: Any, kwargs: dict[str, Any], kind: str) -> Any:
    """Call a class with ``kwargs``, or bind them to a function, after checking their names
    against its signature."""
    name = getattr(entry, "__name__", repr(entry))
    target = entry.__init__ if isinstance(entry, type) else entry
    params = inspect.signature(target).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    valid = _keyword_parameters(entry)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown and not takes_any:
        raise ValueError(
            f"{name} got unknown argument(s) {', '.join(unknown)}. "
            f"Valid: {', '.join(valid) or '(none)'}."
        )
    if not isinstance(entry, type):
        return partial(entry, **kwargs) if kwargs else entry
    missing = [n for n in valid if params[n].default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        raise ValueError(f"{name} ({kind}) needs {', '.join(missing)}.")
    return entry(**kwargs)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _same_definition(a: Any, b: Any) -> bool:
    return a is b or _qualname(a) == _qualname(b)


class Component:
    """Base of every named component class.

    Setting ``name`` on a subclass registers it in the family's ``registry`` (a class attribute
    of the family's base class). :meth:`config` reports the constructor arguments, read from the
    attributes of the same name, so a subclass that stores its arguments under their own names
    needs no code to be copied, saved and loaded.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[Registry]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "registry" in cls.__dict__:  # a family's base class
            cls.registry.base = cls
        elif cls.__dict__.get("name"):
            cls.registry.register(cls.name, cls)

    @classmethod
    def is_registered(cls) -> bool:
        """True when this class can be rebuilt from its name (and so be saved)."""
        return bool(cls.name) and cls.name in cls.registry and cls.registry.lookup(cls.name) is cls

    def config(self) -> dict[str, Any]:
        """``{"name": ..., **constructor arguments}``, JSON-able for built-in components."""
        params = {p: getattr(self, p) for p in _keyword_parameters(type(self)) if hasattr(self, p)}
        return {"name": self.name, **params}

    def spec(self) -> str | dict[str, Any]:
        """The short form of :meth:`config`: just the name when there are no arguments."""
        config = self.config()
        return config["name"] if len(config) == 1 else config

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


#: The catalogues, one per family. Each family's module registers its built-ins on import.
activations = Registry("activation", default="identity")
losses = Registry("loss")
initializers = Registry("initializer")
optimizers = Registry("optimizer", default="sgd")
schedules = Registry("lr schedule", default="constant")
callbacks = Registry("callback")
layers = Registry("layer")
