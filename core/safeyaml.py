"""Reading YAML that came from a pull request: safe tags only, no aliases, no duplicate keys, bounded size.

Aliases are refused outright rather than counted: a plan never needs them, and refusing them is the only
rule that makes an alias-expansion bomb ("billion laughs") harmless to every later walk over the data.
"""

from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError

MAX_BYTES = 1024 * 1024


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects aliases and duplicate mapping keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases are not allowed", problem_mark=event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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


def _mark(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return f"line {mark.line + 1}" if mark is not None else "file"


def load_documents(text: str, source: str) -> list[Any]:
    """Parse every YAML document in `text` with the strict loader."""
    try:
        return list(yaml.load_all(text, Loader=_StrictLoader))  # _StrictLoader is a SafeLoader
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(source, _mark(error), f"not valid YAML: {problem}") from None


def load_one(path: Path, source: str) -> Any:
    """Read a file holding exactly one YAML document."""
    documents = [doc for doc in load_documents(read_text(path, source), source) if doc is not None]
    if not documents:
        raise InputError(source, "file", "is empty")
    if len(documents) > 1:
        raise InputError(source, "file", "holds more than one YAML document")
    return documents[0]
