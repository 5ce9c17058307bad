"""The key that signs apply records: held by the workers, never by the namespace the records live in.

Every record save is an HMAC-SHA256 over the record's canonical JSON (integrations.records), so that someone who
can edit ConfigMaps in the namespace, or a file next to the plan, cannot alter or forge a record undetected. The
key comes from, in order:

- `INFRA_RECORD_KEY` (the key itself), with `INFRA_RECORD_KEYS_OLD` (comma-separated earlier keys, still accepted
  when verifying: rotation);
- `INFRA_RECORD_KEY_BLOCK`, the name of a Prefect Secret block holding the key (or `current,old,...`);
- with neither, a key generated once per user at `$XDG_CONFIG_HOME/infra-orchestrator/record.key` (default
  `~/.config/...`), mode 0600: apply and rollback then work on one machine, and docs/production.md says how
  workers share one key.

A record names its key by id (the first 16 hex digits of the key's sha256), so a rotated worker still verifies
records signed before the rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

from core.conventions import RECORD_KEY_FILE, Env
from integrations import secrets

KEY_ENV = Env.RECORD_KEY
OLD_KEYS_ENV = Env.RECORD_KEYS_OLD
KEY_BLOCK_ENV = Env.RECORD_KEY_BLOCK
KEY_FILE = Path(RECORD_KEY_FILE)
MIN_KEY_LENGTH = 16


class RecordKeyError(Exception):
    """No usable key: one line saying what to configure."""


@dataclass(frozen=True)
class RecordKeys:
    """The key records are signed with, and every key a record may have been signed with, by id."""

    current_id: str
    by_id: Mapping[str, bytes]
    source: str

    def sign(self, text: str) -> tuple[str, str]:
        """(key id, HMAC-SHA256 of `text` in hex) with the current key."""
        return self.current_id, _mac(self.by_id[self.current_id], text)

    def verifies(self, key_id: str, mac: str, text: str) -> bool | None:
        """Whether `mac` is `text`'s HMAC under the key `key_id`; None when no key of that id is held."""
        key = self.by_id.get(key_id)
        if key is None:
            return None
        return hmac.compare_digest(_mac(key, text), mac)


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def default_key_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / KEY_FILE


def _keys(values: list[str], source: str) -> RecordKeys:
    keys = [value.strip().encode() for value in values if value.strip()]
    if not keys:
        raise RecordKeyError(f"{source} holds no record key")
    if any(len(key) < MIN_KEY_LENGTH for key in keys):
        raise RecordKeyError(f"{source}: a record key must be at least {MIN_KEY_LENGTH} characters")
    for key in keys:
        secrets.register(key.decode())
    return RecordKeys(key_id(keys[0]), {key_id(key): key for key in keys}, source)


def _from_block(name: str) -> list[str]:
    try:
        from prefect.blocks.system import Secret  # lazy: only when a block is configured
    except ImportError:
        raise RecordKeyError(f"{KEY_BLOCK_ENV} names a Prefect Secret block but Prefect is not installed") from None
    try:
        block: Any = Secret.load(name, _sync=True)  # type: ignore[call-arg]
        value = block.get()
    except Exception as error:  # any load failure becomes one clear line
        raise RecordKeyError(f"cannot load the record key from Prefect Secret block {name!r} "
                             f"({type(error).__name__})") from None
    if not isinstance(value, str):
        raise RecordKeyError(f"Prefect Secret block {name!r} holds no record key")
    return value.split(",")


def _from_file(path: Path) -> list[str]:
    """The per-user default key, created once (0600, never replaced: records signed with it stay verifiable)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(random.token_hex(32) + "\n")
        if path.stat().st_mode & 0o077:
            raise RecordKeyError(f"{path} is readable or writable by others: chmod 600 it")
        return [path.read_text(encoding="utf-8")]
    except OSError as error:
        raise RecordKeyError(f"cannot read or create the record key {path} ({error.strerror or error}); set "
                             f"{KEY_ENV}") from None


_cache: dict[tuple[str | None, ...], RecordKeys] = {}
_cache_lock = Lock()


def record_keys(env: Mapping[str, str] | None = None) -> RecordKeys:
    """The configured keys (read once per process and configuration); raises RecordKeyError."""
    env = os.environ if env is None else env
    path = default_key_path(env)
    config = (env.get(KEY_ENV), env.get(OLD_KEYS_ENV), env.get(KEY_BLOCK_ENV), str(path))
    with _cache_lock:
        if config not in _cache:
            old = (env.get(OLD_KEYS_ENV) or "").split(",")
            if env.get(KEY_ENV):
                keys = _keys([env[KEY_ENV], *old], KEY_ENV)
            elif env.get(KEY_BLOCK_ENV):
                keys = _keys([*_from_block(env[KEY_BLOCK_ENV]), *old], f"Prefect Secret block {env[KEY_BLOCK_ENV]!r}")
            else:
                keys = _keys([*_from_file(path), *old], str(path))
            _cache[config] = keys
        return _cache[config]


def block_configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether the key is in a Prefect Secret block (a preview, which never imports Prefect, cannot verify)."""
    env = os.environ if env is None else env
    return not env.get(KEY_ENV) and bool(env.get(KEY_BLOCK_ENV))
