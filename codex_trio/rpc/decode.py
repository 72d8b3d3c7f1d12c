"""Decode JSON values into typed wire messages, with serde's error texts.

The reference server decodes every request with serde, and clients see serde's wording in the error
(`invalid type: integer `5`, expected a string`, `missing field `input``, `unknown variant ...`). Params
types here are TypedDicts whose keys are the wire names; this module walks their annotations so every
processor gets validated params and the same messages as the reference, from one mechanism.

Conventions that mirror serde's defaults:
- an ``Optional[T]`` key may be missing or null (serde's ``Option``), any other key is required;
- unknown keys are ignored;
- ``Literal[...]`` is an enum of unit variants (accepts a string, or a one-key map naming the variant);
- ``Annotated[Union[A, B, ...], Tagged("Name")]`` is an internally tagged enum (by default on ``type``);
- ``Annotated[int, U32]`` and friends name the integer type that the reference uses.
"""

from __future__ import annotations

import math
import sys
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

# typing_extensions costs start-up time; Python 3.11's typing has what is needed (every TypedDict here
# is typing's, which typing.is_typeddict recognises).
if sys.version_info >= (3, 11):
    from typing import NotRequired, Required, is_typeddict
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired, Required, is_typeddict


class DecodeError(Exception):
    """The value does not fit the type; ``str(err)`` is serde's message."""


class IntKind(NamedTuple):
    name: str
    minimum: int
    maximum: int


U8 = IntKind("u8", 0, 2**8 - 1)
U16 = IntKind("u16", 0, 2**16 - 1)
U32 = IntKind("u32", 0, 2**32 - 1)
U64 = IntKind("u64", 0, 2**64 - 1)
USIZE = IntKind("usize", 0, 2**64 - 1)
I32 = IntKind("i32", -(2**31), 2**31 - 1)
I64 = IntKind("i64", -(2**63), 2**63 - 1)


class Tagged(NamedTuple):
    """Marks a Union of TypedDicts as an internally tagged enum (serde ``#[serde(tag = ...)]``)."""

    name: str
    tag: str = "type"


class Untagged(NamedTuple):
    """Marks a Union as serde ``#[serde(untagged)]``: the first variant that fits wins."""

    name: str


def unexpected(value: object) -> str:
    """serde_json's description of a JSON value that did not fit."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{_format_float(value)}`"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return "unknown"


def _format_float(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return f"{int(value)}.0"
    return repr(value)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _invalid_type(value: object, expected: str) -> DecodeError:
    return DecodeError(f"invalid type: {unexpected(value)}, expected {expected}")


def _variants_list(variants: typing.Sequence[str]) -> str:
    if not variants:
        return "there are no variants"
    if len(variants) == 1:
        return f"`{variants[0]}`"
    if len(variants) == 2:
        return f"`{variants[0]}` or `{variants[1]}`"
    return "one of " + ", ".join(f"`{v}`" for v in variants)


def unknown_variant(variant: str, variants: typing.Sequence[str]) -> DecodeError:
    return DecodeError(f"unknown variant `{variant}`, expected {_variants_list(variants)}")


Decoder = Callable[[Any], Any]
_cache: dict[Any, Decoder] = {}


def decode(tp: Any, value: Any) -> Any:
    """Validate ``value`` (parsed JSON) against ``tp``; returns the value with defaults filled in."""
    return decoder_for(tp)(value)


def decoder_for(tp: Any) -> Decoder:
    try:
        return _cache[tp]
    except KeyError:
        pass
    except TypeError:  # unhashable annotation objects are built each time
        return _build(tp)
    dec = _build(tp)
    _cache[tp] = dec
    return dec


def _is_optional(tp: Any) -> bool:
    origin = get_origin(tp)
    if origin is Annotated:
        return _is_optional(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return type(None) in get_args(tp)
    return tp is None or tp is type(None) or tp is Any


def describe(tp: Any) -> str:
    """serde's "expected ..." phrase for a type."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        for m in meta:
            if isinstance(m, IntKind):
                return m.name
            if isinstance(m, Tagged):
                return f"internally tagged enum {m.name}"
            if isinstance(m, Untagged):
                return f"untagged enum {m.name}"
        return describe(base)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return describe(args[0]) if len(args) == 1 else "a value"
    if tp is str:
        return "a string"
    if tp is bool:
        return "a boolean"
    if tp is int:
        return "i64"
    if tp is float:
        return "f64"
    if origin is list:
        return "a sequence"
    if origin is dict:
        return "a map"
    if origin is Literal:
        return "string or map"
    if is_typeddict(tp):
        return f"struct {tp.__name__}"
    return "a value"


def _build(tp: Any) -> Decoder:
    if tp is Any or tp is object:
        return lambda v: v
    origin = get_origin(tp)
    if origin is Annotated:
        return _build_annotated(tp)
    if origin in (Union, types.UnionType):
        return _build_union(tp)
    if tp is str:
        return _build_scalar(str, "a string")
    if tp is bool:
        return _build_scalar(bool, "a boolean")
    if tp is int:
        return _build_int(I64)
    if tp is float:
        return _build_float()
    if tp is None or tp is type(None):
        return _build_none()
    if origin is list:
        return _build_list(get_args(tp)[0])
    if origin is dict:
        return _build_dict(get_args(tp)[1])
    if origin is Literal:
        return _build_literal(get_args(tp))
    if is_typeddict(tp):
        return _build_struct(tp)
    raise TypeError(f"no decoder for {tp!r}")


def _build_annotated(tp: Any) -> Decoder:
    base, *meta = get_args(tp)
    for m in meta:
        if isinstance(m, IntKind):
            return _build_int(m)
        if isinstance(m, Tagged):
            return _build_tagged(base, m)
        if isinstance(m, Untagged):
            return _build_untagged(base, m)
    return _build(base)


def _build_none() -> Decoder:
    def dec(v: Any) -> None:
        if v is not None:
            raise _invalid_type(v, "unit")
        return None

    return dec


def _build_scalar(kind: type, expected: str) -> Decoder:
    def dec(v: Any) -> Any:
        # bool is a subclass of int in Python; JSON keeps them apart.
        if type(v) is not kind:
            raise _invalid_type(v, expected)
        return v

    return dec


def _build_int(kind: IntKind) -> Decoder:
    def dec(v: Any) -> int:
        if type(v) is not int:
            raise _invalid_type(v, kind.name)
        if not kind.minimum <= v <= kind.maximum:
            raise DecodeError(f"invalid value: integer `{v}`, expected {kind.name}")
        return v

    return dec


def _build_float() -> Decoder:
    def dec(v: Any) -> float:
        if type(v) is int:
            return float(v)
        if type(v) is not float:
            raise _invalid_type(v, "f64")
        return v

    return dec


def _build_list(item_tp: Any) -> Decoder:
    item = decoder_for(item_tp)

    def dec(v: Any) -> list[Any]:
        if not isinstance(v, list):
            raise _invalid_type(v, "a sequence")
        return [item(x) for x in v]

    return dec


def _build_dict(value_tp: Any) -> Decoder:
    value = decoder_for(value_tp)

    def dec(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise _invalid_type(v, "a map")
        return {k: value(x) for k, x in v.items()}

    return dec


def _build_literal(variants: tuple[Any, ...]) -> Decoder:
    names = [str(x) for x in variants]

    def dec(v: Any) -> Any:
        if isinstance(v, str):
            if v not in names:
                raise unknown_variant(v, names)
            return v
        if isinstance(v, dict) and len(v) == 1:
            (key, _inner), = v.items()
            if key not in names:
                raise unknown_variant(key, names)
            raise _invalid_type(v, "unit variant")
        raise _invalid_type(v, "string or map")

    return dec


class _Field(NamedTuple):
    name: str
    decode: Decoder
    optional: bool


def _struct_fields(td: Any) -> list[_Field]:
    hints = typing.get_type_hints(td, include_extras=True)
    required_keys: frozenset[str] = getattr(td, "__required_keys__", frozenset())
    fields = []
    for name, hint in hints.items():
        inner = hint
        marker = get_origin(hint)
        if marker in (NotRequired, Required):
            inner = get_args(hint)[0]
        # The marker itself decides where there is one: Python 3.10's typing.TypedDict does not know
        # typing_extensions' NotRequired and counts such keys in __required_keys__.
        if marker is NotRequired:
            required = False
        elif marker is Required:
            required = True
        else:
            required = name in required_keys
        optional = not required or _is_optional(inner)
        fields.append(_Field(name, decoder_for(inner), optional))
    return fields


def _build_struct(td: Any) -> Decoder:
    # Fields are resolved lazily: TypedDicts may refer to each other before all are defined.
    fields: list[_Field] | None = None
    name = td.__name__

    def dec(v: Any) -> dict[str, Any]:
        nonlocal fields
        if fields is None:
            fields = _struct_fields(td)
        if isinstance(v, list):
            return _struct_from_seq(v)
        if not isinstance(v, dict):
            raise _invalid_type(v, f"struct {name}")
        out: dict[str, Any] = {}
        for f in fields:
            if f.name in v:
                out[f.name] = f.decode(v[f.name])
            elif f.optional:
                out[f.name] = None
            else:
                raise DecodeError(f"missing field `{f.name}`")
        return out

    def _struct_from_seq(v: list[Any]) -> dict[str, Any]:
        # serde accepts a struct as a sequence of its fields in declaration order.
        assert fields is not None
        if len(v) < len(fields):
            raise DecodeError(
                f"invalid length {len(v)}, expected struct {name} with {len(fields)} elements"
            )
        if len(v) > len(fields):
            raise DecodeError(f"invalid length {len(v)}, expected {len(fields)} elements in sequence")
        return {f.name: f.decode(x) for f, x in zip(fields, v, strict=True)}

    return dec


def _tag_value(td: Any, tag: str) -> str:
    hint = typing.get_type_hints(td)[tag]
    if get_origin(hint) in (NotRequired, Required):
        hint = get_args(hint)[0]
    (value,) = get_args(hint)
    return str(value)


def _build_tagged(union_tp: Any, meta: Tagged) -> Decoder:
    variants: dict[str, Decoder] | None = None

    def dec(v: Any) -> Any:
        nonlocal variants
        if variants is None:
            variants = {_tag_value(td, meta.tag): decoder_for(td) for td in get_args(union_tp)}
        if not isinstance(v, dict):
            raise _invalid_type(v, f"internally tagged enum {meta.name}")
        if meta.tag not in v:
            raise DecodeError(f"missing field `{meta.tag}`")
        tag = v[meta.tag]
        if not isinstance(tag, str):
            raise _invalid_type(tag, "variant identifier")
        if tag not in variants:
            raise unknown_variant(tag, list(variants))
        return variants[tag](v)

    return dec


def _build_untagged(union_tp: Any, meta: Untagged) -> Decoder:
    options = [decoder_for(t) for t in get_args(union_tp)]

    def dec(v: Any) -> Any:
        for option in options:
            try:
                return option(v)
            except DecodeError:
                continue
        raise DecodeError(f"data did not match any variant of untagged enum {meta.name}")

    return dec


def _build_union(tp: Any) -> Decoder:
    args = [a for a in get_args(tp) if a is not type(None)]
    nullable = len(args) != len(get_args(tp))
    if len(args) == 1:
        inner = decoder_for(args[0])
        if not nullable:
            return inner
        return lambda v: None if v is None else inner(v)
    return _build_enum_union(args, nullable)


def _build_enum_union(args: list[Any], nullable: bool) -> Decoder:
    """A Union of Literals and one-key TypedDicts: serde's externally tagged enum.

    ``"accept" | {"acceptWithExecpolicyAmendment": {...}}`` is how the protocol spells an enum that
    mixes unit variants with variants that carry data.
    """
    units: list[str] = []
    newtypes: dict[str, Decoder] = {}
    order: list[str] = []
    for a in args:
        if get_origin(a) is Literal:
            for x in get_args(a):
                units.append(str(x))
                order.append(str(x))
        elif is_typeddict(a):
            keys = list(typing.get_type_hints(a))
            if len(keys) != 1:
                raise TypeError(f"{a!r}: an enum variant with data must have exactly one key")
            newtypes[keys[0]] = decoder_for(a)
            order.append(keys[0])
        else:
            raise TypeError(f"unsupported union member {a!r}; annotate the Union with Tagged/Untagged")

    def dec(v: Any) -> Any:
        if v is None and nullable:
            return None
        if isinstance(v, str):
            if v in units:
                return v
            if v in newtypes:
                raise _invalid_type(v, "newtype variant")
            raise unknown_variant(v, order)
        if isinstance(v, dict) and len(v) == 1:
            (key, _inner), = v.items()
            if key in newtypes:
                return newtypes[key](v)
            if key in units:
                raise _invalid_type(v, "unit variant")
            raise unknown_variant(key, order)
        raise _invalid_type(v, "string or map")

    return dec
