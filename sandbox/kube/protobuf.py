"""Just enough Kubernetes protobuf decoding for kubectl's generators.

``kubectl create namespace X`` and ``kubectl create configmap ...`` send ``application/vnd.kubernetes.protobuf``
bodies (kubectl-wire.md). The envelope is ``k8s\\0`` + ``runtime.Unknown``; this module decodes it and the
Namespace / ConfigMap messages (with ObjectMeta name, namespace, labels, annotations) into JSON-shaped dicts.
Anything else raises :class:`ProtobufError` and is answered 415.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
            out.append((num, val))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ProtobufError("truncated field")
            out.append((num, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ProtobufError("truncated message")
    return out


def _str(v: int | bytes) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a string field")
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError("invalid utf-8") from None


def _map_entry(v: int | bytes) -> tuple[str, bytes]:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a map entry")
    key, val = "", b""
    for n, x in fields(v):
        if n == 1:
            key = _str(x)
        elif n == 2 and isinstance(x, bytes):
            val = x
    return key, val


def _object_meta(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for n, v in fields(buf):
        if n in names:
            meta[names[n]] = _str(v)
        elif n in (11, 12):
            k, val = _map_entry(v)
            meta.setdefault("labels" if n == 11 else "annotations", {})[k] = val.decode("utf-8", "replace")
    return meta


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded Namespace or ConfigMap into its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for n, v in fields(body[len(MAGIC) :]):
        if n == 1 and isinstance(v, bytes):
            for tn, tv in fields(v):
                if tn == 1:
                    api_version = _str(tv)
                elif tn == 2:
                    kind = _str(tv)
        elif n == 2 and isinstance(v, bytes):
            raw = v
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    if (api_version, kind) == ("v1", "ConfigMap"):
        for n, v in fields(raw):
            if n == 1 and isinstance(v, bytes):
                obj["metadata"] = _object_meta(v)
            elif n == 2:
                k, val = _map_entry(v)
                obj.setdefault("data", {})[k] = val.decode("utf-8", "replace")
            elif n == 3:
                k, val = _map_entry(v)
                obj.setdefault("binaryData", {})[k] = base64.b64encode(val).decode()
            elif n == 4 and isinstance(v, int):
                obj["immutable"] = bool(v)
        return obj
    if (api_version, kind) == ("v1", "Namespace"):
        for n, v in fields(raw):
            if n == 1 and isinstance(v, bytes):
                obj["metadata"] = _object_meta(v)
        return obj
    raise ProtobufError(f"protobuf bodies are only understood for Namespace and ConfigMap, not {kind or '?'}")
