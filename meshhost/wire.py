"""Bounded msgpack decoding and typed field readers, shared by every codec.

Every meshhost wire format is msgpack, and every decoder of bytes from a peer,
a guest or a file must do the same four things: refuse input over a size
before parsing, give msgpack its length limits so it never allocates more
than the input justifies, check each field's type and range, and raise one
error class of its layer (never ``ValueError`` or msgpack's own exceptions)
with a message that names the field.  This module does them once.

A codec binds a :class:`Reader` to its layer's error class and names its
:class:`Limits` once::

    _wire = Reader(MembershipDecodeError)
    _PACKET = Limits(max_bytes=1400, max_bin=1400, max_str=1400, max_array=64, max_map=0)

    fields = _wire.array(_wire.unpack(data, _PACKET, "membership packet"), "packet", min_len=1)
    seq = _wire.uint(fields[1], "ping seq", MAX_U32)

Contract: :meth:`Reader.unpack` returns exactly one msgpack value or raises
the reader's error class; each field reader returns its value unchanged (so a
decoded message is byte-identical when re-encoded) or raises that class.
Readers check exact types (``type(v) is int``): msgpack produces exact
builtins, and ``bool`` is never taken for an ``int``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import msgpack

from meshhost.errors import LocalProtocolError, MeshError

__all__ = ["MAX_I64", "MAX_U32", "MAX_U64", "MIN_I64", "Limits", "Reader"]

MAX_U32 = (1 << 32) - 1
MAX_U64 = (1 << 64) - 1
MIN_I64 = -(1 << 63)
MAX_I64 = (1 << 63) - 1

T = TypeVar("T")


# What msgpack's C and pure-Python unpackers raise for malformed input, and
# nothing broader: ValueError covers FormatError, StackError, ExtraData,
# UnicodeDecodeError (raw=False) and strict_map_key; TypeError an
# unhashable map key; UnpackException OutOfData; RecursionError deep nesting
# in the pure-Python fallback.  tests/wire/test_wire.py fuzzes this list.
_MSGPACK_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    msgpack.UnpackException,
    RecursionError,
)


_BYTES_LIKE = (bytes, bytearray, memoryview)
_unpackb = msgpack.unpackb


def _length_limit(n: int | None) -> int:
    return -1 if n is None else n  # msgpack: -1 = bounded by the input's length


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one decode may hold, checked before anything is allocated.

    ``max_bytes`` bounds the input itself; the ``max_*`` lengths are passed to
    msgpack (``None``: at most the input's length, msgpack's own default).
    ``max_depth`` (arrays/maps inside arrays/maps; a bare array is depth 1)
    is checked on the decoded value; ``None`` leaves only msgpack's built-in
    stack bound.  ``strict_map_key`` allows only str/bytes map keys.
    ``trailing_zeros``: ignore 0x00 bytes after the value (one real guest
    writes one); any other trailing byte is an error.
    """

    max_bytes: int
    max_bin: int | None = None
    max_str: int | None = None
    max_array: int | None = None
    max_map: int | None = None
    max_ext: int | None = 0
    max_depth: int | None = None
    strict_map_key: bool = True
    trailing_zeros: bool = False
    # msgpack's own keyword values (-1: bounded by the input's length), kept
    # ready: unpack passes them as literal keywords, the cheapest call.
    _bin: int = field(init=False, repr=False, compare=False)
    _str: int = field(init=False, repr=False, compare=False)
    _array: int = field(init=False, repr=False, compare=False)
    _map: int = field(init=False, repr=False, compare=False)
    _ext: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_bytes < 0 or any(
            n is not None and n < 0
            for n in (self.max_bin, self.max_str, self.max_array, self.max_map, self.max_ext)
        ):
            raise LocalProtocolError(f"wire limits must not be negative: {self!r}")
        if self.max_depth is not None and self.max_depth < 1:
            raise LocalProtocolError(f"wire max_depth must be at least 1: {self!r}")
        for name, value in (
            ("_bin", self.max_bin),
            ("_str", self.max_str),
            ("_array", self.max_array),
            ("_map", self.max_map),
            ("_ext", self.max_ext),
        ):
            object.__setattr__(self, name, _length_limit(value))


class Reader:
    """Decoding helpers that raise ``error`` (a :class:`MeshError` class) and nothing else."""

    __slots__ = ("error",)

    def __init__(self, error: type[MeshError]) -> None:
        self.error = error

    def fail(self, message: str) -> NoReturn:
        """Raise the reader's error class with ``message``."""
        raise self.error(message)

    # -- the bounded unpack ---------------------------------------------------

    def unpack(self, data: Any, limits: Limits, what: str) -> Any:
        """Return the one msgpack value in ``data``.

        Raises the reader's error (naming ``what``) if ``data`` is not bytes,
        is longer than ``limits.max_bytes``, is not valid msgpack, breaks a
        length, depth or map-key limit, or has bytes after the value.
        """
        if type(data) is not bytes and not isinstance(data, _BYTES_LIKE):
            raise self.error(f"{what} must be bytes, got {type(data).__name__}")
        n = len(data)
        if n > limits.max_bytes:
            raise self.error(f"{what} of {n} bytes exceeds the {limits.max_bytes}-byte limit")
        # msgpack allocates an array's or map's slots from its header before
        # reading the elements, so a count limit above the input's length is
        # cut to it (every element takes at least one byte).
        max_array = n if limits._array > n else limits._array
        max_map = n if limits._map > n else limits._map
        try:
            value = _unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=limits.strict_map_key,
                max_bin_len=limits._bin,
                max_str_len=limits._str,
                max_array_len=max_array,
                max_map_len=max_map,
                max_ext_len=limits._ext,
            )
        except msgpack.ExtraData as extra:
            if limits.trailing_zeros and not any(extra.extra):
                value = extra.unpacked
            else:
                raise self.error(
                    f"{what} has {len(extra.extra)} unexpected bytes after the msgpack value"
                ) from None
        except _MSGPACK_ERRORS as exc:
            raise self.error(f"{what} is not valid msgpack: {exc}") from None
        if limits.max_depth is not None and type(value) in (list, dict):
            self.check_depth(value, limits.max_depth, what)
        return value

    def check_depth(self, value: Any, max_depth: int, what: str) -> None:
        """Raise unless arrays/maps nest at most ``max_depth`` deep (iteratively: no recursion)."""
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > max_depth:
                raise self.error(f"{what} nests deeper than {max_depth} levels")
            children = item.values() if type(item) is dict else item
            stack.extend((c, depth + 1) for c in children if type(c) in (list, dict))

    # -- typed field readers --------------------------------------------------

    def uint(self, value: Any, what: str, limit: int = MAX_U64) -> int:
        """An integer in ``0..limit``."""
        if type(value) is not int or not 0 <= value <= limit:
            raise self.error(f"{what} must be an integer in 0..{limit}, got {_show(value)}")
        return value

    def integer(self, value: Any, what: str, low: int = MIN_I64, high: int = MAX_I64) -> int:
        """An integer in ``low..high``."""
        if type(value) is not int or not low <= value <= high:
            raise self.error(f"{what} must be an integer in {low}..{high}, got {_show(value)}")
        return value

    def boolean(self, value: Any, what: str) -> bool:
        """``true`` or ``false``."""
        if type(value) is not bool:
            raise self.error(f"{what} must be a boolean, got {_show(value)}")
        return value

    def text(self, value: Any, what: str, max_chars: int, min_chars: int = 0) -> str:
        """A string of ``min_chars..max_chars`` characters."""
        if type(value) is not str:
            raise self.error(f"{what} must be a string, got {_show(value)}")
        if not min_chars <= len(value) <= max_chars:
            raise self.error(
                f"{what} must be {min_chars}..{max_chars} characters, got {len(value)}"
            )
        return value

    def binary(self, value: Any, what: str, max_bytes: int, min_bytes: int = 0) -> bytes:
        """A bin of ``min_bytes..max_bytes`` bytes."""
        if type(value) is not bytes:
            raise self.error(f"{what} must be bin, got {_show(value)}")
        if not min_bytes <= len(value) <= max_bytes:
            if min_bytes == max_bytes:
                raise self.error(f"{what} must be {max_bytes} bytes, got {len(value)}")
            raise self.error(f"{what} must be {min_bytes}..{max_bytes} bytes, got {len(value)}")
        return value

    def array(
        self, value: Any, what: str, min_len: int = 0, max_len: int | None = None
    ) -> list[Any]:
        """An array of at least ``min_len`` (and at most ``max_len``) elements."""
        if type(value) is not list:
            raise self.error(f"{what} must be an array, got {_show(value)}")
        if len(value) < min_len:
            raise self.error(f"{what} has {len(value)} elements; needs at least {min_len}")
        if max_len is not None and len(value) > max_len:
            raise self.error(f"{what} has {len(value)} elements; at most {max_len} allowed")
        return value

    def list_of(
        self, value: Any, what: str, item: Callable[[Any], T], max_len: int | None = None
    ) -> list[T]:
        """An array whose elements each pass ``item`` (an error names the index)."""
        out: list[T] = []
        for i, element in enumerate(self.array(value, what, 0, max_len)):
            try:
                out.append(item(element))
            except self.error as exc:
                raise self.error(f"{what}[{i}]: {exc}") from None
        return out

    def mapping(self, value: Any, what: str) -> dict[Any, Any]:
        """A map."""
        if type(value) is not dict:
            raise self.error(f"{what} must be a map, got {_show(value)}")
        return value

    def required(self, obj: dict[Any, Any], key: str, what: str) -> Any:
        """``obj[key]``; raises if the key is missing."""
        try:
            return obj[key]
        except KeyError:
            raise self.error(f"{what} lacks the field {key!r}") from None

    @staticmethod
    def optional(obj: dict[Any, Any], key: str, default: Any = None) -> Any:
        """``obj[key]``, or ``default`` when the key is missing or nil."""
        value = obj.get(key)
        return default if value is None else value


_TYPE_NAMES = {
    type(None): "nil",
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    bytes: "bin",
    list: "an array",
    dict: "a map",
}


def _show(value: Any) -> str:
    """A short description of a wrong value for an error message (never the whole value)."""
    if type(value) in (int, bool, type(None)):
        return repr(value)[:40]
    return _TYPE_NAMES.get(type(value), type(value).__name__)
