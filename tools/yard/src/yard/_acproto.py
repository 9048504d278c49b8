"""The action-cache record of Bazel's remote cache protocol, as much of it as yard writes.

A value stored under ``/ac/<key>`` is an ``ActionResult`` message of the Remote Execution API
(``build.bazel.remote.execution.v2``) in protobuf's binary wire format, so that servers that
validate action-cache uploads (bazel-remote does by default) accept yard's. yard uses three
fields and ignores any other it reads:

- ``output_files`` (2): ``OutputFile`` messages, each a ``path`` (1) and a ``Digest`` (2) of
  ``hash`` (1, lowercase SHA-256 hex) and ``size_bytes`` (2);
- ``exit_code`` (4): always 0 (yard records successes only).

The files themselves live in the content-addressable store, ``/cas/<sha256>``.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_NAME: Final = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]{0,199}")
"""An artifact's file name: no folder, no leading dot (no ``..``, nothing hidden)."""

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class OutputFile(NamedTuple):
    """One output of a record: a plain file name and the digest of its content."""

    path: str
    sha256: str
    size: int


def encode(files: list[OutputFile]) -> bytes:
    """An ``ActionResult`` listing ``files``, with exit code 0."""
    out = bytearray()
    for item in files:
        digest = _field(1, item.sha256.encode("ascii")) + _tag(2, _VARINT) + _varint(item.size)
        out += _field(2, _field(1, item.path.encode("utf-8")) + _field(2, digest))
    out += _tag(4, _VARINT) + _varint(0)
    return bytes(out)


def decode(data: bytes) -> list[OutputFile]:
    """The output files of an ``ActionResult``; ValueError when it is not a well-formed record
    of a success whose outputs are plain file names with SHA-256 digests."""
    files: list[OutputFile] = []
    exit_code = 0
    for number, wire, value in _fields(data):
        if number == 2 and wire == _LEN:
            assert isinstance(value, bytes)
            files.append(_output_file(value))
        elif number == 4 and wire == _VARINT:
            assert isinstance(value, int)
            exit_code = value
    if exit_code != 0:
        raise ValueError(f"exit code {exit_code}")
    names = [f.path for f in files]
    if len(set(names)) != len(names):
        raise ValueError("an output file is listed twice")
    return files


def _output_file(data: bytes) -> OutputFile:
    path = sha = ""
    size = -1
    for number, wire, value in _fields(data):
        if number == 1 and wire == _LEN:
            assert isinstance(value, bytes)
            path = value.decode("utf-8", "replace")
        elif number == 2 and wire == _LEN:
            assert isinstance(value, bytes)
            for inner, inner_wire, inner_value in _fields(value):
                if inner == 1 and inner_wire == _LEN:
                    assert isinstance(inner_value, bytes)
                    sha = inner_value.decode("ascii", "replace")
                elif inner == 2 and inner_wire == _VARINT:
                    assert isinstance(inner_value, int)
                    size = inner_value
    if not _NAME.fullmatch(path):
        raise ValueError(f"output file name {path!r} is not a plain file name")
    if not _HEX64.fullmatch(sha) or size < 0:
        raise ValueError(f"output file {path!r} has no SHA-256 digest")
    return OutputFile(path, sha, size)


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Every (field number, wire type, value) of a message; ValueError when malformed."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated message")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            if pos + width > len(data):
                raise ValueError("truncated message")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise ValueError(f"unknown wire type {wire}")
        out.append((number, wire, value))
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _field(number: int, payload: bytes) -> bytes:
    return _tag(number, _LEN) + _varint(len(payload)) + payload
