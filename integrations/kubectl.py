"""Running kubectl: an argument list through `sh` (never a shell), a timeout on every call, failures classified.

`KUBECTL` overrides the binary (the seed's `KUBECTL=echo` trick still works), `KUBECONFIG` passes through the
environment, and a plan's `context` becomes `--context`. A failure is transient (worth a retry with backoff)
or permanent (retrying cannot help); kubectl's own message is kept either way.

kubectl's message alone cannot say which: a 500 on the GET that `scale` makes first prints `error: no objects
passed to scale <message>`, and on the PATCH of `set resources` `error: failed to patch ... <message>`, with
no reason. So every call runs with `-v=6`, which logs each HTTP exchange with its status
(`round_trippers.go] PATCH <url> 500 Internal Server Error in 2 milliseconds`, or no status when the connection
dropped), and the classification reads those: a 5xx or 429 anywhere in the call (not since retried
successfully by client-go) is transient. A write whose answer never came (dropped connection, 504, or the
whole call timed out) may have landed: `KubectlError.maybe_landed` tells the caller to read before re-sending.
So may a write whose kubectl was killed by a signal (the OOM killer, a `kill` from outside): its request may have
reached the server before the process died, and the log says nothing of an answer that never came.

Every call is bounded on its own, whatever happens to this process: each HTTP request carries
`--request-timeout` (client-go sends it to the server as `?timeout=`, which bounds the request's handling there
too), the whole call has a kill timer, and kubectl dies with the process that started it (`PR_SET_PDEATHSIG`),
so a CLI killed with SIGKILL leaves no kubectl behind that goes on retrying its write. `write_bound_s` is how
long after its start a call's write may still land: what a lock's next holder waits for (integrations.lease).
"""

import ctypes
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sh

from core.errors import PermanentError, TemporaryError
from core.retry import KUBECTL_PAUSES_S, retry_until
from core.settings import Settings

DEFAULT_TIMEOUT_S = 60.0
VERBOSITY = "-v=6"
"""Logs every HTTP exchange with its status on stderr, and nothing more (no headers, no bodies, no tokens)."""
_ANY_EXIT = list(range(256))
_KILLED_EXITS = frozenset({128 + signal.SIGKILL, 128 + signal.SIGTERM, 128 + signal.SIGINT})
"""A wrapper shell's exit code for a kubectl killed by these signals (a direct child's is negative)."""
REQUEST_MARGIN_S = 1.0
"""How much sooner than its call's limit each request of the call times out, so that kubectl reports a request
that never got its answer itself (and logs it) before the kill timer has to end the call."""

T = TypeVar("T")

_TRANSIENT = re.compile(
    r"\((TooManyRequests|ServiceUnavailable|InternalError|Timeout|ServerTimeout)\)"
    r"|timed out waiting for the condition on|i/o timeout|connection refused|connection reset|unexpected EOF"
    r"|The connection to the server \S+ was refused"
    r"|\bEOF\b|TLS handshake timeout|Unable to connect to the server|the server is currently unable"
    r"|the server has received too many requests|http2: server sent GOAWAY|net/http: request canceled"
    r"|Client.Timeout exceeded|context deadline exceeded|the object has been modified; please apply your changes",
    re.IGNORECASE,
)

_KLOG_LINE = re.compile(r"^[EWI]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ \S+:\d+\]")
_VERBOSE_LINE = re.compile(r"^I\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ \S+:\d+\]")
"""An info line: kubectl prints them only because of VERBOSITY, so they are taken out of `stderr`."""
_EXCHANGES = (
    re.compile(r"round_trippers\.go:\d+\] (?P<method>[A-Z]+) (?P<url>\S+) (?P<status>\d{3})?.* in \d+ \w+$"),
    re.compile(r'round_trippers\.go:\d+\] "Response" verb="(?P<method>[A-Z]+)" url="(?P<url>[^"]*)" '
               r'status="(?P<status>\d{3})?'),
)
"""The exchange lines of kubectl up to 1.32 (`GET <url> 200 OK in 3 milliseconds`) and from 1.33 on
(`"Response" verb="GET" url="<url>" status="200 OK" milliseconds=3`); no status: the connection failed."""
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_READ_VERBS = frozenset({"get", "describe", "diff", "version", "api-resources", "api-versions", "auth", "explain",
                         "wait", "logs", "top", "rollout status", "rollout history"})
"""Commands that never write. Any other command that timed out may have written before it was killed."""


@dataclass(frozen=True)
class Kubectl:
    """How to reach one cluster: binary, optional context, working directory for relative manifests."""

    binary: str = field(default_factory=lambda: os.environ.get("KUBECTL") or "kubectl")
    context: str | None = None
    cwd: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    env: Mapping[str, str] | None = None

    def base_args(self, namespace: str) -> list[str]:
        context = [f"--context={self.context}"] if self.context else []
        return [*context, "-n", namespace]


def kubectl_for(settings: Settings, context: str | None = None, cwd: Path | None = None,
                limit_s: float | None = None) -> Kubectl:
    """Every kubectl runner of a run: the settings' binary and call timeout (bounded further by `limit_s`, for
    a preview that must not hang), the plan's context, and the directory its relative manifests resolve from."""
    timeout = settings.kubectl_timeout_s if limit_s is None else min(settings.kubectl_timeout_s, limit_s)
    return Kubectl(binary=settings.kubectl_binary, context=context, cwd=cwd, timeout_s=timeout)


@dataclass(frozen=True)
class Exchange:
    """One HTTP request kubectl made, as its `-v=6` log shows it; `status` None: no answer (connection lost)."""

    method: str
    url: str
    status: int | None

    @property
    def failed_transiently(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def unanswered_write(self) -> bool:
        """A write whose outcome we cannot know: the server may have committed it before the answer was lost."""
        return self.method in _WRITE_METHODS and (self.status is None or self.status == 504)


def exchanges(stderr: str) -> tuple[Exchange, ...]:
    found = []
    for line in stderr.splitlines():
        match = next((hit for pattern in _EXCHANGES if (hit := pattern.search(line))), None)
        if match:
            status = match.group("status")
            found.append(Exchange(match.group("method"), match.group("url"), int(status) if status else None))
    return tuple(found)


def _unresolved(requests: Sequence[Exchange]) -> list[Exchange]:
    """Failed exchanges that client-go did not retry successfully later in the same call."""
    return [exchange for index, exchange in enumerate(requests) if exchange.failed_transiently
            and not any(later.method == exchange.method and later.url == exchange.url and later.status is not None
                        and later.status < 400 for later in requests[index + 1:])]


@dataclass(frozen=True)
class KubectlResult:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    requests: tuple[Exchange, ...] = ()
    """The HTTP exchanges of the call, from its `-v=6` log (empty for a binary that prints no such log)."""
    reads_only: bool = False
    """The command never writes (`get`, `rollout status`, ...)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def message(self) -> str:
        """kubectl's own error text on one line, without client-go's klog noise (`E1128 10:36:31 ...` lines)."""
        lines = (self.stderr or self.stdout).strip().splitlines()
        meaningful = [line for line in lines if not _KLOG_LINE.match(line)] or lines[-1:]
        ended = (f"kubectl was killed by signal {-self.exit_code}" if self.exit_code < 0
                 else f"kubectl exited with {self.exit_code}")
        return " ".join(" ".join(meaningful).split()) or ended

    @property
    def transient(self) -> bool:
        """Failed, and a 5xx, 429 or lost connection in any exchange or kubectl's message says a retry may help."""
        if self.ok:
            return False
        return (self.killed or bool(_unresolved(self.requests))
                or bool(_TRANSIENT.search(self.stderr or self.stdout)))

    @property
    def killed(self) -> bool:
        """kubectl was ended by a signal: whatever it was doing was cut short, and says nothing of the outcome."""
        return self.exit_code < 0 or self.exit_code in _KILLED_EXITS

    @property
    def maybe_landed(self) -> bool:
        """Failed, but a write it sent may have been committed: read the object before sending it again. A
        write command killed by a signal may have sent its request before it died, logged or not."""
        if self.ok:
            return False
        return (self.killed and not self.reads_only) or any(
            exchange.unanswered_write for exchange in _unresolved(self.requests))


class KubectlError(Exception):
    """A failed kubectl call; `transient` says whether a retry may help, `maybe_landed` whether a write it sent
    may have been committed all the same (then re-read before re-sending).

    Constructed as KubectlError(...), it is a TransientKubectlError (a TemporaryError) or a PermanentKubectlError
    (a PermanentError), so that `except TemporaryError` catches kubectl's transient failures with all others.
    """

    def __new__(cls, message: str, transient: bool, result: "KubectlResult | None" = None,
                maybe_landed: bool = False) -> "KubectlError":
        if cls is KubectlError:
            cls = TransientKubectlError if transient else PermanentKubectlError
        return super().__new__(cls, message)

    def __init__(self, message: str, transient: bool, result: "KubectlResult | None" = None,
                 maybe_landed: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.result = result
        self.maybe_landed = maybe_landed
        self.attempts = 1
        """Set by a retrying caller: how many tries ended in this error."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles whole (Prefect may persist a failed task's exception), `attempts` included."""
        return KubectlError, (str(self), self.transient, self.result, self.maybe_landed), self.__dict__


class TransientKubectlError(KubectlError, TemporaryError):
    pass


class PermanentKubectlError(KubectlError, PermanentError):
    pass


def _only_reads(args: Sequence[str]) -> bool:
    words = [arg for arg in args if not arg.startswith("-")][:2]
    return bool(words) and (words[0] in _READ_VERBS or " ".join(words) in _READ_VERBS)


def _children() -> dict[int, list[int]]:
    """Every live process's children, from /proc (Linux); empty where there is no /proc."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            parent = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat_file.parent.name))
    return children


LATE_WRITE_GRACE_S = 2.0
"""How long a write may still take to land at the API server after its request's own timeout: the server commits
what it received, and its timeout filter answers 504 while the handler goes on, so a retry that reads the object
just after the timeout can still see it unchanged and re-send a write whose first request lands after that read."""


def request_timeout_s(limit_s: float) -> float:
    """The `--request-timeout` of a call limited to `limit_s`: each request ends before the call must."""
    return max(1.0, limit_s - REQUEST_MARGIN_S)


def write_bound_s(kubectl: Kubectl) -> float:
    """How long after a holder's kubectl died (with it: PR_SET_PDEATHSIG) a write it had sent may still land: the
    request's own timeout, which the server enforces, plus the commit that may follow it."""
    return request_timeout_s(kubectl.timeout_s) + LATE_WRITE_GRACE_S


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def _dies_with(parent: int) -> Callable[[], None]:
    """A preexec for kubectl's process: SIGKILL it when the thread that started it ends (its wait ends first on
    every path but this process's death), and end it at once if `parent` died before it was set up."""

    def preexec() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + signal.SIGKILL)

    return preexec


def _exited(pid: int) -> bool:
    """The process ended (reaped already, or a zombie whose exit is not yet collected); it is not reaped here."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and everything it started, children first found, so none is reparented and missed."""
    children = _children()
    tree, index = [pid], 0
    while index < len(tree):
        tree += children.get(tree[index], [])
        index += 1
    for member in tree:
        with suppress(OSError):
            os.kill(member, signal.SIGKILL)


def run(kubectl: Kubectl, namespace: str, args: Sequence[str], stdin: str | None = None,
        timeout_s: float | None = None) -> KubectlResult:
    """Run `kubectl [--context=C] -v=6 -n <namespace> <args>`; a non-zero exit is returned, not raised.

    Raises KubectlError only when kubectl could not run at all (missing binary: permanent; timeout: transient,
    and maybe landed unless the command only reads).
    """
    limit = timeout_s or kubectl.timeout_s
    full = [*kubectl.base_args(namespace), f"--request-timeout={request_timeout_s(limit):g}s", *args]
    env = {**os.environ, **(kubectl.env or {})}
    started = time.perf_counter()
    try:
        command = sh.Command(kubectl.binary)
    except sh.CommandNotFound:
        raise KubectlError(f"kubectl binary {kubectl.binary!r} not found", transient=False) from None
    expired = threading.Event()
    # Output goes to unlinked temporary files, not through sh's reader threads: those handle output line by
    # line (about 1 s per 4 MB here, vs 12 ms this way) and stop reading 2 s after the process ends, so on a
    # busy machine a large answer can come back cut short (a bench run got a `get -o json` that was not JSON).
    # The timeout is a timer that kills kubectl: sh's own `_timeout` and `wait(timeout=)` poll every 100 ms,
    # adding ~50 ms to every call (measured: 109 ms vs 58 ms for a 50 ms process). It kills the call's whole
    # process tree: a `KUBECTL` wrapper script's kubectl would otherwise go on running, and writing, after the
    # call was given up and its steps retried. kubectl stays in our process group, so Ctrl-C and a kill of the
    # whole group (a worker's container stopping) still reach it. The timer kills only a kubectl that is still
    # running: after this process was stopped (SIGSTOP) and resumed, the timer is due at once though kubectl may
    # have ended long before, with its write answered.
    # Its input, too, is a file written whole before kubectl starts, not fed by a thread of ours: a call under
    # way must not depend on this process to go on (stopped by SIGSTOP, it would hold kubectl's write back until
    # it resumed, past the point where it may have lost the lock).
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as given:
        given.write((stdin or "").encode())
        given.seek(0)
        process = command(VERBOSITY, *full, _bg=True, _bg_exc=False, _return_cmd=True, _ok_code=_ANY_EXIT,
                          _out=out, _err=err, _env=env, _in=given, _cwd=str(kubectl.cwd) if kubectl.cwd else None,
                          _preexec_fn=_dies_with(os.getpid()))

        def expire() -> None:
            if not _exited(process.pid):
                expired.set()
                kill_tree(process.pid)

        timer = threading.Timer(limit, expire)
        timer.start()
        try:
            process.wait()
        except sh.SignalException:
            pass  # killed: by the timer (below) or from outside (a failed call with the signal's exit code)
        finally:
            timer.cancel()
        if expired.is_set():
            writes = not _only_reads(args)
            raise KubectlError(f"kubectl {' '.join(args[:2])} timed out after {limit:g}s", transient=True,
                               maybe_landed=writes)
        out.seek(0)
        err.seek(0)
        logged = err.read().decode(errors="replace")
        stderr = "".join(line for line in logged.splitlines(keepends=True) if not _VERBOSE_LINE.match(line))
        result = KubectlResult(tuple(full), process.exit_code or 0, out.read().decode(errors="replace"), stderr,
                               time.perf_counter() - started, exchanges(logged), _only_reads(args))
    return result


def checked(result: KubectlResult) -> KubectlResult:
    """`result`, or a KubectlError carrying its message and classification."""
    if not result.ok:
        raise KubectlError(result.message, result.transient, result, maybe_landed=result.maybe_landed)
    return result


def get_items(kubectl: Kubectl, namespace: str, resources: Sequence[str]) -> list[dict[str, Any]]:
    """Every object of the given resource types in one call: `kubectl get a,b,c -o json`."""
    result = checked(run(kubectl, namespace, ["get", ",".join(resources), "-o", "json"]))
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise KubectlError(f"kubectl get {','.join(resources)} did not print JSON", transient=False) from None
    items = document.get("items", [document]) if isinstance(document, dict) else []
    return [item for item in items if isinstance(item, dict)]


def let_land(maybe_landed: bool) -> None:
    """Before reading back a write that may have landed (to decide whether to send it again): give the server
    the time it may still take to commit what it received (LATE_WRITE_GRACE_S)."""
    if maybe_landed:
        time.sleep(LATE_WRITE_GRACE_S)


def retry_transient(call: Callable[[], T], deadline: float) -> T:
    """`call()`, retried on transient failures (TemporaryError) with backoff until `deadline` (time.monotonic);
    then the last failure raises. Only for calls that are safe to repeat, or that check before they write."""
    return retry_until(call, deadline, KUBECTL_PAUSES_S)
