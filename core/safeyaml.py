"""Reading YAML that came from a pull request: safe tags only, no aliases, no duplicate keys, bounded size.

Scalars are read as YAML 1.2 core would read them where YAML 1.1 surprises: a plain scalar that the 1.1
resolver calls an int, a float or a timestamp but that is not plain ASCII decimal (`1:30` is 90 in 1.1, `017` is
15, `0x1F`, `1_000`, `.inf`, a 5,000-digit number) stays the string it looks like, so a field that wants a number
refuses it by name. Floats and timestamps are always strings: a plan has no float field (quantities keep their
exact text), and a timestamp like `2024-13-45` would make the constructor raise.

Aliases are refused outright rather than counted: a plan never needs them, and refusing them is the only
rule that makes an alias-expansion bomb ("billion laughs") harmless to every later walk over the data. The
checks run on libyaml's node graph (never expanded), and only then is the document built, with SafeLoader's
constructors, so the C parser's speed comes without giving up any rule.
"""

import re
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError
from core.k8s import DECIMAL_PATTERN

MAX_BYTES = 1024 * 1024
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STRING_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_READ_AS_TEXT = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}


class _Refused(Exception):
    def __init__(self, problem: str, mark: yaml.Mark) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = mark.line + 1


def _check(root: yaml.Node) -> None:
    """Walk the node graph once, in document order: a node reached twice is an alias (reported where it is
    used: at its key in a mapping); a mapping may not repeat a key. Numbers that are not plain decimal are
    re-tagged as strings before anything is constructed."""
    seen: set[int] = set()
    pending: list[tuple[yaml.Node, yaml.Mark]] = [(root, root.start_mark)]
    while pending:
        node, used_at = pending.pop()
        if id(node) in seen:
            raise _Refused("anchors and aliases are not allowed", used_at)
        seen.add(id(node))
        children: list[tuple[yaml.Node, yaml.Mark]] = []
        if isinstance(node, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if (key.tag, key.value) in keys:
                        raise _Refused(f"duplicate key {key.value!r}", key.start_mark)
                    keys.add((key.tag, key.value))
                children += [(key, key.start_mark), (value, key.start_mark)]
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, item.start_mark) for item in node.value]
        elif isinstance(node, yaml.ScalarNode) and _read_as_text(node):
            node.tag = _STRING_TAG
        pending.extend(reversed(children))


def _read_as_text(node: yaml.ScalarNode) -> bool:
    if node.tag == _INT_TAG:
        return not re.fullmatch(DECIMAL_PATTERN, node.value)
    return node.tag in _READ_AS_TEXT


def read_text(path: Path, source: str) -> str:
    """Read a small UTF-8 text file, or raise InputError naming what is wrong with it."""
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
    if b"\0" in data:
        raise InputError(source, "file", "is binary, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(source, "file", f"is not UTF-8 text (byte {error.start})") from None


def load_documents(text: str, source: str) -> list[Any]:
    """Parse every YAML document in `text`, refusing aliases, duplicate keys and non-standard tags."""
    loader = _Loader(text)
    try:
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


def load_one(path: Path, source: str) -> Any:
    """Read a file holding exactly one YAML document."""
    documents = [doc for doc in load_documents(read_text(path, source), source) if doc is not None]
    if not documents:
        raise InputError(source, "file", "is empty")
    if len(documents) > 1:
        raise InputError(source, "file", "holds more than one YAML document")
    return documents[0]
