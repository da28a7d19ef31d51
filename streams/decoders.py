"""Compiled decoders for the hot paths: events and commands read by msgspec, built as the pydantic
models they are.

The pydantic models of ``schemas`` stay the contract: what they accept and refuse, and the
objects they build, are what the hub means by an event or a command. Validating a PositionStated
with pydantic costs about 9 µs, much of it in Python (the exact number's validator, nested
models); the worker, the projector and every replay read hundreds of thousands of them.

So each model is translated once, at import, from its own field definitions into a msgspec
``Struct`` (types, lengths, patterns, bounds, unknown fields forbidden; a tagged union on
``type``), and into a generated function that builds the pydantic instance from the decoded
struct without validating again (as ``model_construct`` does, field set included). Exact numbers
are read as JSON numbers by msgspec and turned into fractions by the contract's own
``exact_number`` (its results cached per number, so a repeated value costs a dict lookup); the
models' own ``after`` validators run on the built instance.

**Refusal is always pydantic's.** The compiled decoder is at least as strict as the model: when
it refuses anything (or a converter raises), the bytes are validated again by pydantic, which
then either accepts them (an input the fast path does not cover: an old event without
``version_hash``, a timestamp with more than six decimals, a lax ``"1"`` for an integer, a text
holding NUL) or refuses them with its own message. A property test
(``tests/unit/test_decoders.py``) holds both decoders equal, accepted or refused, on generated
valid and mutated events and commands of every type, and checks that valid ones take the fast
path.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from typing import Annotated, Any, Generic, Literal, Optional, TypeVar, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AwareDatetime, BaseModel, BeforeValidator, TypeAdapter
from pydantic.fields import FieldInfo

from schemas import commands as command_models
from schemas import events as event_models
from schemas.common import exact_number

UNSET = msgspec.UNSET
_object_setattr = object.__setattr__

# A NUL escaped in a text is left to pydantic (commands refuse it; an event keeps it); a false
# alarm (a backslash before ``u0000`` in a text) only costs the slower, equal, path.
_NUL = b"\\u0000"


class _Cached:
    """A reading of one kind of value (an exact number, a checked text, a moment), remembered per
    value it was given: what it builds is immutable. The generated builders look the value up in
    ``known`` themselves and call the reading only for a value not seen lately."""

    SIZE = 4096

    def __init__(self, read: Callable[[Any], Any], none: bool = False) -> None:
        self.read = read
        self.none = none
        self.known: dict[Any, Any] = {None: None} if none else {}

    def __call__(self, value: Any) -> Any:
        result = self.read(value)
        if len(self.known) >= self.SIZE:
            self.known.clear()
            if self.none:
                self.known[None] = None
        self.known[value] = result
        return result


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
_HEX_CHARS = "0123456789abcdef"
_SLUG_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
_FAILS: dict[str, str] = {
    # The contract's patterns, as conditions on a text ``{v}`` that hold when it does NOT match,
    # written with ``str.strip`` (all of a text's characters are in a set when stripping them
    # leaves nothing): a C call each, where the regular expression walks the text in Python's
    # engine. ``tests/unit/test_decoders.py`` holds each equal to its pattern.
    r"^[A-Za-z0-9_.:-]+$": "not {v} or {v}.strip(_ID_CHARS)",
    r"^[0-9a-f]{64}$": "len({v}) != 64 or {v}.strip(_HEX_CHARS)",
    r"^[0-9a-f]{32}$": "len({v}) != 32 or {v}.strip(_HEX_CHARS)",
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$": (
        "not {v} or {v}.strip(_SLUG_CHARS) or {v}[0] == '-' or {v}[-1] == '-' or '--' in {v}"
    ),
}


class _Pattern:
    """A text's pattern, as pydantic checks it (``$``: the end of the text, as in its regex engine;
    Python's ``$`` also matches before a final newline). The generated builders check the known
    patterns inline (``_FAILS``); others, and texts in a tuple, are checked by calling this."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.search = re.compile(pattern.replace("$", r"\Z")).search
        self.fails = _FAILS.get(pattern)

    def __call__(self, value: str | None) -> str | None:
        if value is not None and self.search(value) is None:
            raise ValueError(f"does not match {self.pattern}")
        return value


# The moments the fast path reads itself: RFC 3339 as the hub writes it (``T``, at most six
# decimals, ``Z`` or an offset within a day). Anything else (a space, a lower-case ``z``, seven
# decimals: msgspec would round what pydantic cuts) is left to pydantic.
_MOMENT = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
).search


def _moment(value: str) -> datetime:
    if _MOMENT(value) is None:
        raise ValueError("left to pydantic")
    return datetime.fromisoformat(value)


class _Unsupported(Exception):
    """A field the translation does not cover: its model is left to pydantic."""


class _Translation:
    """Translates pydantic models into msgspec structs and generated builders."""

    def __init__(self) -> None:
        self.structs: dict[type[BaseModel], Any] = {}
        self.builders: dict[type[BaseModel], Callable[[Any], BaseModel]] = {}
        self._names = 0

    def name(self, prefix: str, value: Any) -> str:
        self._names += 1
        name = f"_{prefix}{self._names}"
        self.namespace[name] = value
        return name

    namespace: dict[str, Any]

    def model(self, cls: type[BaseModel], tag: str | None = None) -> tuple[Any, Callable[[Any], BaseModel]]:
        if cls in self.structs:
            return self.structs[cls], self.builders[cls]
        decorators = cls.__pydantic_decorators__
        before = {name for name, d in decorators.model_validators.items() if d.info.mode != "after"}
        if before - {"_no_nul", "_version_hash_of_old_events"}:
            raise _Unsupported(f"{cls.__name__}: a model validator before the fields")
        if decorators.field_validators or decorators.root_validators or decorators.validators:
            raise _Unsupported(f"{cls.__name__}: field validators")
        self.namespace = {
            "UNSET": UNSET,
            "_set": _object_setattr,
            "_new": object.__new__,
            "cls": cls,
            "_ID_CHARS": _ID_CHARS,
            "_HEX_CHARS": _HEX_CHARS,
            "_SLUG_CHARS": _SLUG_CHARS,
        }
        fields: list[tuple[str, Any, Any]] = []
        lines = ["def build(s):"]
        values: list[str] = []
        required: list[str] = []
        optional: list[str] = []
        patterns: list[tuple[str, _Pattern]] = []
        for name, info in cls.model_fields.items():
            if name == "type" and tag is not None:
                values.append(f"'type': {tag!r}")
                required.append(name)
                continue
            mtype, convert = self.field(info.annotation, info)
            expression = f"s.{name}"
            if isinstance(convert, _Pattern) and convert.fails is not None:
                patterns.append((name, convert))
                convert = None
            if isinstance(convert, _Cached):
                known = self.name("k", convert.known)
                expression = f"({known}[s.{name}] if s.{name} in {known} else {self.name('c', convert)}(s.{name}))"
            elif convert is not None:
                expression = f"{self.name('c', convert)}({expression})"
            if info.is_required():
                fields.append((name, mtype, msgspec.NODEFAULT))
                required.append(name)
                values.append(f"{name!r}: {expression}")
            else:
                default = info.get_default(call_default_factory=True)
                fields.append((name, Union[mtype, msgspec.UnsetType], UNSET))  # noqa: UP007
                optional.append(name)
                lines.append(f"    v_{name} = {self.name('d', default)} if s.{name} is UNSET else {expression}")
                values.append(f"{name!r}: v_{name}")
        for name, p in patterns:
            assert p.fails is not None
            text = f"s.{name}" if name in required else f"v_{name}"
            fails = p.fails.format(v=text)
            lines.append(f"    if {fails if name in required else f'{text} is not None and ({fails})'}:")
            lines.append(f"        raise ValueError({f'{name}: does not match {p.pattern}'!r})")
        lines.append(f"    fs = {set(required)!r}" if required else "    fs = set()")
        for name in optional:
            lines.append(f"    if s.{name} is not UNSET: fs.add({name!r})")
        lines.append("    o = _new(cls)")
        lines.append("    _set(o, '__dict__', {" + ", ".join(values) + "})")
        lines.append("    _set(o, '__pydantic_fields_set__', fs)")
        lines.append("    _set(o, '__pydantic_extra__', None)")
        lines.append("    _set(o, '__pydantic_private__', None)")
        for validator in (d for d in decorators.model_validators.values() if d.info.mode == "after"):
            lines.append(f"    o = {self.name('v', validator.func)}(o)")
        lines.append("    return o")
        namespace = self.namespace
        namespace["source"] = "\n".join(lines)
        exec("\n".join(lines), namespace)  # generated from the model's own fields, at import
        options: dict[str, Any] = {"kw_only": True, "forbid_unknown_fields": True, "frozen": True}
        if tag is not None:
            options.update(tag_field="type", tag=tag)
        struct = msgspec.defstruct(f"Fast{cls.__name__}", fields, **options)
        self.structs[cls], self.builders[cls] = struct, namespace["build"]
        return struct, namespace["build"]

    def field(
        self, annotation: Any, info: FieldInfo | None = None, optional: bool = False
    ) -> tuple[Any, Callable[[Any], Any] | None]:
        """The msgspec type of a field, and how its decoded value becomes the model's (None: as it is)."""
        metadata = list(info.metadata) if info is not None else []
        while get_origin(annotation) is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        if get_origin(annotation) in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1 or len(get_args(annotation)) != 2:
                raise _Unsupported(str(annotation))
            inner, convert = self.field(Annotated[options[0], *metadata] if metadata else options[0], optional=True)
            if convert is None or isinstance(convert, _Cached | _Pattern):  # (these take None as it is)
                return Optional[inner], convert  # noqa: UP045 (a runtime type, maybe no class)
            return Optional[inner], _unless_none(convert)  # noqa: UP045
        constraints: dict[str, Any] = {}
        pattern: str | None = None
        before: list[Callable[[Any], Any]] = []
        for item in metadata:
            if isinstance(item, annotated_types.MinLen):
                constraints["min_length"] = item.min_length
            elif isinstance(item, annotated_types.MaxLen):
                constraints["max_length"] = item.max_length
            elif isinstance(item, annotated_types.Ge):
                constraints["ge"] = item.ge
            elif isinstance(item, annotated_types.Le):
                constraints["le"] = item.le
            elif isinstance(item, BeforeValidator):
                before.append(item.func)  # type: ignore[arg-type]  # (the contract's take one argument)
            elif type(item).__name__ == "_PydanticGeneralMetadata" and getattr(item, "pattern", None):
                # pydantic's regex engine: ``$`` is the end of the text (Python's also before a final newline)
                pattern = item.pattern
            elif type(item).__name__ in ("Strict", "PlainSerializer", "WithJsonSchema"):
                pass  # msgspec reads JSON strictly anyway; serialising is pydantic's
            else:
                # AfterValidator and anything else: validated by pydantic itself (a rare field)
                adapter = TypeAdapter(Annotated[annotation, *metadata])
                return Any, adapter.validate_python
        origin = get_origin(annotation)
        if before:
            if annotation is Fraction and before == [exact_number]:
                return int | float, _Cached(exact_number, none=optional)
            # Another reading (a share, a due date): the contract's function, then pydantic's check.
            adapter = TypeAdapter(Annotated[annotation, *metadata])
            return Any, adapter.validate_python
        meta = [msgspec.Meta(**constraints)] if constraints else []
        if annotation is str and pattern is not None:
            return (Annotated[str, *meta] if meta else str), _Pattern(pattern)
        if annotation in (str, int, float, bool):
            return (Annotated[annotation, *meta] if meta else annotation), None
        if annotation in (datetime, AwareDatetime) and not constraints:
            return str, _Cached(_moment, none=optional)
        if origin is Literal:
            return annotation, None
        if origin is tuple:
            args = get_args(annotation)
            if len(args) != 2 or args[1] is not Ellipsis:
                raise _Unsupported(str(annotation))
            inner, convert = self.field(args[0])
            mtype: Any = tuple[inner, ...]  # type: ignore[valid-type]
            if meta:
                mtype = Annotated[mtype, *meta]
            if convert is None:
                return mtype, None
            return mtype, _each(convert)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            namespace = getattr(self, "namespace", None)
            struct, build = self.model(annotation)
            self.namespace = namespace  # type: ignore[assignment]
            return struct, build
        raise _Unsupported(str(annotation))


def _unless_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _each(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda values: tuple(map(convert, values))


T = TypeVar("T")


class Compiled(Generic[T]):
    """A decoder of one discriminated union of the contract (``type`` is the tag)."""

    def __init__(self, members: tuple[type[BaseModel], ...], adapter: TypeAdapter[T]) -> None:
        translation = _Translation()
        structs = []
        self.builders: dict[Any, Callable[[Any], BaseModel]] = {}
        self.slow_types: list[str] = []
        for cls in members:
            tag = cls.model_fields["type"].default
            try:
                struct, build = translation.model(cls, tag)
            except _Unsupported:
                self.slow_types.append(tag)
                continue
            structs.append(struct)
            self.builders[struct] = build
        self.adapter = adapter
        self.decoder = msgspec.json.Decoder(Union[tuple(structs)])  # noqa: UP007

    def fast(self, value: bytes) -> Any:
        """The model, by the compiled path alone; raises (any exception) where it does not decide."""
        if _NUL in value:
            raise ValueError("left to pydantic")
        decoded = self.decoder.decode(value)
        return self.builders[type(decoded)](decoded)

    def __call__(self, value: bytes) -> T:
        """The model; refused exactly as pydantic refuses (``pydantic.ValidationError``)."""
        try:
            if _NUL not in value:
                decoded = self.decoder.decode(value)
                return self.builders[type(decoded)](decoded)  # type: ignore[return-value]
        except Exception:  # refused, or not covered: pydantic decides, with its own message
            pass
        return self.adapter.validate_json(value)


def _members(union: Any) -> tuple[type[BaseModel], ...]:
    while get_origin(union) is Annotated:
        union = get_args(union)[0]
    return typing.get_args(union)


EVENTS: Compiled[event_models.Event] = Compiled(_members(event_models.Event), event_models.EVENT_ADAPTER)
COMMANDS: Compiled[command_models.Command] = Compiled(
    _members(command_models.Command), TypeAdapter(command_models.Command)
)
