"""Reading YAML that came from a pull request, in the strictest dialect: no merge keys (`<<`), no anchors or
aliases, no duplicate keys, no explicit tags (`!!str`, `!foo`), bounded size.

Every YAML feature that two parsers may read differently is refused, because the file is validated here and the
cluster's object must be the one validated: kubectl's Go parser lets a merge key (`<<: {maxReplicas: 50000}`)
override an explicit key that PyYAML keeps. The objects are then sent to kubectl as JSON (core/steps.py), so no
second YAML parser ever reads the file.

Scalars are read as YAML 1.2 core would read them where YAML 1.1 surprises: a plain scalar that the 1.1
resolver calls an int, a float or a timestamp but that is not plain ASCII decimal (`1:30` is 90 in 1.1, `017` is
15, `0x1F`, `1_000`, `.inf`, a 5,000-digit number) stays the string it looks like, so a field that wants a number
refuses it by name. Floats and timestamps are always strings: a plan has no float field (quantities keep their
exact text), and a timestamp like `2024-13-45` would make the constructor raise.

Anchors (even unused ones) and aliases are refused outright rather than counted: a plan never needs them, and
refusing them is the only rule that makes an alias-expansion bomb ("billion laughs") harmless to every later walk
over the data. Anchors, aliases, tags and merge keys are found on libyaml's event stream, before any node is
composed, and only when the text holds one of the characters they need (`&`, `*`, `!`, `<<`), so a plain plan pays
nothing for them; duplicate keys are found on the node graph. Only then is the document built, with SafeLoader's
constructors, so the C parser's speed comes without giving up any rule.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError
from core.k8s import DECIMAL_PATTERN

MAX_BYTES = 1024 * 1024
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STANDARD_TAGS = "tag:yaml.org,2002:"
_STRING_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_READ_AS_TEXT = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}


class _Refused(Exception):
    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = mark.line + 1 if mark is not None else 0


_NEEDS_EVENTS = re.compile(r"[&*!]|<<")
"""What an anchor, an alias, a tag or a merge key cannot be written without."""
MERGE_KEY = "<<"


def _check_events(text: str) -> None:
    """Refuse anchors, aliases, explicit tags and merge keys, naming where they stand (`spec.metrics[0]`); the
    first one found is reported."""
    frames: list[_Frame] = []
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionEndEvent):
            frames.pop()
            if frames:
                frames[-1].done()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        is_key = bool(frames) and frames[-1].reading_key
        scalar = event.value if isinstance(event, yaml.ScalarEvent) else None
        problem = _event_problem(event, _key_path(frames, scalar if is_key else None), is_key, scalar)
        if problem is not None:
            raise _Refused(problem, event.start_mark)
        _advance(frames, event, is_key, scalar)


def _key_path(frames: list[_Frame], key: str | None) -> str:
    """Where the next event stands (`spec.metrics[0]`), `key` included when the event is a mapping's key."""
    where = "".join(frame.part() for frame in frames).lstrip(".")
    return f"{where}.{key}".lstrip(".") if key is not None else where


def _event_problem(event: yaml.NodeEvent, where: str, is_key: bool, scalar: str | None) -> str | None:
    """Why `event` is refused (an alias, an anchor, an explicit tag, a merge key), or None."""
    at = f" at key {where}" if where else ""
    if isinstance(event, yaml.AliasEvent):
        return f"alias *{event.anchor}{at}: anchors and aliases are not allowed"
    if event.anchor is not None:
        return f"anchor &{event.anchor}{at}: anchors and aliases are not allowed"
    tag = getattr(event, "tag", None)
    if tag is not None:
        shown_tag = "!!" + tag.removeprefix(_STANDARD_TAGS) if tag.startswith(_STANDARD_TAGS) else tag
        return f"tag {shown_tag}{at}: explicit tags are not allowed"
    if is_key and scalar == MERGE_KEY:
        return f"merge key '<<'{at}: merge keys are not allowed"
    return None


def _advance(frames: list[_Frame], event: yaml.NodeEvent, is_key: bool, scalar: str | None) -> None:
    """Follow `event` in the open collections: a collection opens a frame, a key or a value moves the current one."""
    if isinstance(event, yaml.CollectionStartEvent):
        if is_key:
            frames[-1].key = "?"
        frames.append(_Frame(isinstance(event, yaml.MappingStartEvent)))
    elif is_key:
        frames[-1].key = scalar or "?"
    elif frames:
        frames[-1].done()


class _Frame:
    """An open mapping (its current key; None while a key is read) or sequence (its current index)."""

    def __init__(self, mapping: bool) -> None:
        self.mapping = mapping
        self.key: str | None = None
        self.index = 0

    @property
    def reading_key(self) -> bool:
        return self.mapping and self.key is None

    def part(self) -> str:
        if self.mapping:
            return f".{self.key}" if self.key is not None else ""
        return f"[{self.index}]"

    def done(self) -> None:
        """A value was read: a mapping reads its next key, a sequence its next item."""
        if self.mapping:
            self.key = None
        else:
            self.index += 1


def _check(root: yaml.Node) -> None:
    """Walk the node graph once, in document order (aliases were refused before it was composed): a mapping may
    not repeat a key. Numbers that are not plain decimal are re-tagged as strings before anything is
    constructed."""
    pending: list[yaml.Node] = [root]
    while pending:
        node = pending.pop()
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if (key.tag, key.value) in keys:
                        raise _Refused(f"duplicate key {key.value!r}", key.start_mark)
                    keys.add((key.tag, key.value))
                children += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.ScalarNode) and _read_as_text(node):
            node.tag = _STRING_TAG
        pending.extend(reversed(children))


def _read_as_text(node: yaml.ScalarNode) -> bool:
    if node.tag == _INT_TAG:
        return not re.fullmatch(DECIMAL_PATTERN, node.value)
    return node.tag in _READ_AS_TEXT


def read_bytes(path: Path, source: str) -> bytes:
    """Read a small file once, or raise InputError naming what is wrong with it. These bytes are the ones parsed
    and the ones the gate compares with the pull request: a file is never read twice."""
    try:
        if path.is_dir():
            raise InputError(source, "file", "is a directory, not a file")
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(source, "file", "not found") from None
    except OSError as error:
        raise InputError(source, "file", f"cannot be read ({error.strerror})") from None
    if size > MAX_BYTES:
        raise InputError(source, "file", f"is {size} bytes; the limit is {MAX_BYTES}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(source, "file", f"cannot be read ({error.strerror})") from None
    if len(data) > MAX_BYTES:
        raise InputError(source, "file", f"is {len(data)} bytes; the limit is {MAX_BYTES}")
    return data


def decode(data: bytes, source: str) -> str:
    """`data` as UTF-8 text, or InputError."""
    if b"\0" in data:
        raise InputError(source, "file", "is binary, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(source, "file", f"is not UTF-8 text (byte {error.start})") from None


def load_documents(text: str, source: str) -> list[Any]:
    """Parse every YAML document in `text`, refusing merge keys, anchors, aliases, tags and duplicate keys."""
    loader = _Loader(text)
    try:
        if _NEEDS_EVENTS.search(text):
            _check_events(text)
        documents = []
        while loader.check_node():
            root = loader.get_node()
            if root is not None:
                _check(root)
                documents.append(loader.construct_document(root))  # SafeConstructor: standard tags only
        return documents
    except _Refused as refused:
        raise InputError(source, f"line {refused.line}", f"not valid YAML: {refused.problem}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(source, where, f"not valid YAML: {problem}") from None
    finally:
        loader.dispose()


def parse_one(data: bytes, source: str) -> Any:
    """The one YAML document `data` holds."""
    documents = [doc for doc in load_documents(decode(data, source), source) if doc is not None]
    if not documents:
        raise InputError(source, "file", "is empty")
    if len(documents) > 1:
        raise InputError(source, "file", "holds more than one YAML document")
    return documents[0]


def load_one(path: Path, source: str) -> Any:
    """Read a file holding exactly one YAML document."""
    return parse_one(read_bytes(path, source), source)
