"""Patch formats kubectl sends: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge.

Strategic merge uses the merge keys of the built-in types this sandbox serves (``containers`` by ``name``,
``ports`` by ``containerPort``, ...); lists without a merge key are replaced, as for the real types.
``$setElementOrder/*`` and other directives are consumed and never stored. All functions are pure: they
return new documents and raise :class:`PatchError` on malformed input (the server answers 4xx).
"""

from __future__ import annotations

import copy
from typing import Any

# field name -> merge key, for the list fields of the served built-in types
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
# primitive lists merged as sets
MERGED_PRIMITIVE_LISTS: frozenset[str] = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied; ``code`` is the HTTP status to answer."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``target`` is not modified)."""
    return _merge_into(copy.deepcopy(target), patch)


def _merge_into(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


# --- RFC 6902 -------------------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError("json patch: path must be a string", 400)
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"json patch: invalid pointer {path!r}", 400)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (token.startswith("0") and token != "0"):
        raise PatchError(f"json patch: invalid array index {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f"json patch: array index {idx} out of range")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f"json patch: path component {tok!r} not found")
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, False)]
        else:
            raise PatchError(f"json patch: cannot traverse into {type(cur).__name__}")
    return cur


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"json patch: path {'/'.join(tokens)!r} not found")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError("json patch: invalid path")


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("json patch: cannot remove the root")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"json patch: cannot remove missing path {'/'.join(tokens)!r}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, False))
    raise PatchError("json patch: invalid path")


def _add(doc: Any, tokens: list[str], value: Any, replace: bool) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"json patch: cannot replace missing path {'/'.join(tokens)!r}")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, False)] = value
        else:
            parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError("json patch: invalid path")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise PatchError("json patch: body must be a JSON array of operations", 400)
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError("json patch: each operation must be an object with an 'op'", 400)
        kind = op["op"]
        tokens = _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"json patch: {kind} operation needs a value", 400)
        value = copy.deepcopy(op.get("value"))
        if kind == "add":
            doc = _add(doc, tokens, value, replace=False)
        elif kind == "replace":
            doc = _add(doc, tokens, value, replace=True)
        elif kind == "remove":
            _remove(doc, tokens)
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from"))
            moved = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, tokens, moved, replace=False)
        elif kind == "test":
            if _get(doc, tokens) != value:
                raise PatchError(f"json patch: test operation failed at {op.get('path')!r}")
        else:
            raise PatchError(f"json patch: unknown operation {kind!r}", 400)
    return doc


# --- strategic merge ------------------------------------------------------------------------------------


def strategic_merge(target: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch over the served built-in types."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch: body must be a JSON object", 400)
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into ``target`` in place (``target`` is already a private copy)."""
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return {}
    if directive is not None:
        raise PatchError(f"strategic merge patch: unknown $patch directive {directive!r}", 400)
    result = target
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(value, list) and isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if key.startswith("$"):
            raise PatchError(f"strategic merge patch: unknown directive {key!r}", 400)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            cur = result.get(key)
            result[key] = _smp_map(cur if isinstance(cur, dict) else {}, value)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _smp_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    merge_key = MERGE_KEYS.get(field)
    cur_list = current if isinstance(current, list) else []
    if field in MERGED_PRIMITIVE_LISTS:
        out = list(cur_list)
        for v in patch:
            if v not in out:
                out.append(copy.deepcopy(v))
        return out
    if merge_key is None or not all(isinstance(v, dict) for v in patch):
        # a bare replace (also covers `$patch: replace` markers in lists of scalars)
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return [copy.deepcopy(v) for v in patch if v.get("$patch") != "replace"]
    result = list(cur_list)
    for item in patch:
        key_val = item.get(merge_key)
        if key_val is None:
            raise PatchError(f"strategic merge patch: list {field!r} item lacks merge key {merge_key!r}")
        idx = next((i for i, v in enumerate(result) if isinstance(v, dict) and v.get(merge_key) == key_val), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_smp_map({}, item))
        else:
            result[idx] = _smp_map(result[idx], item)
    return result
