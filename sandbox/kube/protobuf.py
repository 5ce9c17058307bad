"""Just enough Kubernetes protobuf decoding for kubectl's generators.

``kubectl create namespace|configmap|deployment ...`` send ``application/vnd.kubernetes.protobuf`` bodies
(kubectl-wire.md). The envelope is ``k8s\\0`` + ``runtime.Unknown``; this module decodes it and the Namespace,
ConfigMap, Deployment, ResourceQuota and PodDisruptionBudget messages (ObjectMeta name, namespace, labels,
annotations; the DeploymentSpec fields the generator sets, containers with name, image, command, args, ports, env,
resources; quota `hard` and `scopes`; PDB bounds and selector) into JSON-shaped dicts.
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


def _int(v: int | bytes) -> int:
    if not isinstance(v, int):
        raise ProtobufError("expected a varint field")
    return v - (1 << 64) if v >= 1 << 63 else v


def _msg(v: int | bytes) -> bytes:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a message field")
    return v


def _label_selector(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, v in fields(buf):
        if n == 1:
            k, val = _map_entry(v)
            out.setdefault("matchLabels", {})[k] = val.decode("utf-8", "replace")
    return out


def _quantities(v: int | bytes) -> tuple[str, str]:
    k, val = _map_entry(v)
    amount = ""
    for n, x in fields(val):
        if n == 1:
            amount = _str(x)
    return k, amount


def _container(buf: bytes) -> dict[str, Any]:
    c: dict[str, Any] = {}
    for n, v in fields(buf):
        if n in (1, 2, 5, 13, 14):
            c[{1: "name", 2: "image", 5: "workingDir", 13: "terminationMessagePath", 14: "imagePullPolicy"}[n]] = _str(
                v
            )
        elif n in (3, 4):
            c.setdefault("command" if n == 3 else "args", []).append(_str(v))
        elif n == 6:
            port: dict[str, Any] = {}
            for pn, pv in fields(_msg(v)):
                if pn == 1:
                    port["name"] = _str(pv)
                elif pn == 3:
                    port["containerPort"] = _int(pv)
                elif pn == 4:
                    port["protocol"] = _str(pv)
            c.setdefault("ports", []).append(port)
        elif n == 7:
            env: dict[str, Any] = {}
            for en, ev in fields(_msg(v)):
                if en == 1:
                    env["name"] = _str(ev)
                elif en == 2:
                    env["value"] = _str(ev)
            c.setdefault("env", []).append(env)
        elif n == 8:
            res: dict[str, Any] = {}
            for rn, rv in fields(_msg(v)):
                if rn in (1, 2):
                    k, amount = _quantities(rv)
                    res.setdefault("limits" if rn == 1 else "requests", {})[k] = amount
            c["resources"] = res
    return c


def _pod_template(buf: bytes) -> dict[str, Any]:
    tmpl: dict[str, Any] = {}
    for n, v in fields(buf):
        if n == 1:
            tmpl["metadata"] = _object_meta(_msg(v))
        elif n == 2:
            spec: dict[str, Any] = {}
            for sn, sv in fields(_msg(v)):
                if sn == 2:
                    spec.setdefault("containers", []).append(_container(_msg(sv)))
                elif sn == 3:
                    spec["restartPolicy"] = _str(sv)
                elif sn == 4:
                    spec["terminationGracePeriodSeconds"] = _int(sv)
                elif sn == 6:
                    spec["dnsPolicy"] = _str(sv)
            tmpl["spec"] = spec
    return tmpl


def _deployment_spec(buf: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for n, v in fields(buf):
        if n == 1:
            spec["replicas"] = _int(v)
        elif n == 2:
            spec["selector"] = _label_selector(_msg(v))
        elif n == 3:
            spec["template"] = _pod_template(_msg(v))
        elif n == 5:
            spec["minReadySeconds"] = _int(v)
        elif n == 6:
            spec["revisionHistoryLimit"] = _int(v)
        elif n == 7:
            spec["paused"] = bool(_int(v))
        elif n == 9:
            spec["progressDeadlineSeconds"] = _int(v)
    return spec


def _drop_empty_strings(value: Any) -> Any:
    """proto2 writes unset strings as "": JSON omits them."""
    if isinstance(value, dict):
        return {k: _drop_empty_strings(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_drop_empty_strings(v) for v in value]
    return value


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded Namespace, ConfigMap, Deployment, ResourceQuota or PodDisruptionBudget into its
    JSON form."""
    obj: dict[str, Any] = _drop_empty_strings(_decode(body))
    return obj


def _decode(body: bytes) -> dict[str, Any]:
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
    if (api_version, kind) == ("apps/v1", "Deployment"):
        for n, v in fields(raw):
            if n == 1:
                obj["metadata"] = _object_meta(_msg(v))
            elif n == 2:
                obj["spec"] = _deployment_spec(_msg(v))
        return obj
    if (api_version, kind) in (("v1", "ResourceQuota"), ("policy/v1", "PodDisruptionBudget")):
        for n, v in fields(raw):
            if n == 1:
                obj["metadata"] = _object_meta(_msg(v))
            elif n == 2:
                obj["spec"] = _quota_spec(_msg(v)) if kind == "ResourceQuota" else _pdb_spec(_msg(v))
        return obj
    raise ProtobufError(
        "protobuf bodies are only understood for Namespace, ConfigMap, Deployment, ResourceQuota and "
        f"PodDisruptionBudget, not {kind or '?'}"
    )


def _quota_spec(buf: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for n, v in fields(buf):
        if n == 1:
            k, amount = _quantities(v)
            spec.setdefault("hard", {})[k] = amount
        elif n == 2:
            spec.setdefault("scopes", []).append(_str(v))
    return spec


def _int_or_string(buf: bytes) -> int | str:
    kind, number, text = 0, 0, ""
    for n, v in fields(buf):
        if n == 1:
            kind = _int(v)
        elif n == 2:
            number = _int(v)
        elif n == 3:
            text = _str(v)
    return text if kind == 1 else number


def _pdb_spec(buf: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for n, v in fields(buf):
        if n in (1, 3):
            spec["minAvailable" if n == 1 else "maxUnavailable"] = _int_or_string(_msg(v))
        elif n == 2:
            spec["selector"] = _label_selector(_msg(v))
    return spec
