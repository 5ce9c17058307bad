"""A fork server beside the event-woken worker: a flow-run process that starts in milliseconds, not seconds.

Every flow-run process imports Prefect and the project first (about 2 s of CPU on this project's machines),
so ten labels at once on two cores queued ten of those imports behind one another. The fork server
(`python -m deployments.fork_server SOCKET`, started by the worker, `deployments/event_worker.py`) makes those
imports once, with the garbage collector off and frozen (`integrations.process.long_lived_imports`, so the children do
not copy its pages by touching their objects), and then forks one child per flow run, as Python's
multiprocessing "forkserver" with preload does. It stays single-threaded: it refuses to serve if its imports
started a thread.

Prefect's process worker is unchanged: it still spawns the work pool's `command` (`python -m
deployments.engine`), records that process's PID as the run's infrastructure, sends it SIGTERM to cancel, and
turns its exit code into the run's state. That process (`run_forked`, standard library only: ~30 ms) hands its
working directory, environment, umask, resource limits, niceness and stdin/stdout/stderr to the fork server,
which forks the run's process with all of them; it forwards SIGTERM, SIGINT and SIGHUP to that process and
ends as that process ended (its exit code, or the same signal). If it is killed outright, the fork server sees
its connection close and kills the run's process. When the fork server is absent, not yet ready, or refuses,
the process starts the engine itself, as without a fork server: nothing is started twice or lost.

The fork server refuses (and the run starts the slow way) when a file of a module it imported has changed
since (a new checkout or package: it then re-executes itself once its runs have ended), when the run's
environment sets a project setting (INFRA_*) differently (some are read at import), or when the run asks for
resource limits above its own. In the child, Prefect's settings and logging are rebuilt from the run's
environment before the engine runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any

from core.conventions import Env

SOCKET_VARIABLE = Env.FORK_SERVER.value
"""The fork server's socket, set by the worker in its own environment and so in every run's."""
PROJECT_PREFIX = "INFRA_"
HEADER = struct.Struct("!I")
MAX_REQUEST = 4 << 20
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}
PRELOADED_FLOWS = ("flows.apply", "flows.rollback", "flows.plan", "flows.scale")
"""The deployments' flow modules: Prefect loads each entrypoint file afresh, and its imports come from here."""


def _note(message: str) -> None:
    print(f"fork server: {message}", file=sys.stderr, flush=True)


# The flow-run process's side (`python -m deployments.engine`): standard library only.


def _request() -> bytes:
    umask = os.umask(0)
    os.umask(umask)
    return json.dumps({
        "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
        "limits": {name: resource.getrlimit(number) for name, number in LIMITS.items()},
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
    }).encode()  # fmt: skip


def run_forked(path: str) -> int | None:
    """Have the fork server at `path` start this run's process, and wait for it: its exit code, or minus the
    signal that ended it. None (nothing started) when the fork server is not there or refuses."""
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)  # held until they can be forwarded, or handled as usual
    try:
        return _run_forked(path)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)


def _run_forked(path: str) -> int | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        try:
            server.connect(path)
            request = _request()
            socket.send_fds(server, [HEADER.pack(len(request))], [0, 1, 2])
            server.sendall(request)
            answer = server.makefile("rb")
            started = answer.readline().split()
        except OSError:
            return None
        if started[:1] != [b"pid"]:
            reason = b" ".join(started[1:]).decode(errors="replace") or "no answer"
            print(f"The fork server did not start this run ({reason}); starting it in this process",
                  file=sys.stderr, flush=True)  # fmt: skip
            return None
        child = int(started[1])

        def forward(signum: int, _frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

        for signum in FORWARDED:
            signal.signal(signum, forward)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        try:
            ended = answer.readline().split()
        except OSError:
            ended = []
    if len(ended) == 2 and ended[0] in (b"exit", b"signal"):
        return int(ended[1]) if ended[0] == b"exit" else -int(ended[1])
    print(f"Lost the fork server while flow-run process {child} ran; waiting for it to end", file=sys.stderr,
          flush=True)  # fmt: skip
    while _alive(child):
        time.sleep(0.5)
    return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_as(code: int) -> None:
    """End this process as the run's process ended: its exit code, or the same signal."""
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # which have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    sys.exit(code)


# The fork server's side.


class ForkServer:
    """One listening socket, one connection per running child, SIGCHLD through a wake-up pipe; one thread."""

    def __init__(self, path: str, loaded: dict[str, int]) -> None:
        self.path = path
        self.loaded = loaded
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}
        self.stale = False
        self.stopping = False
        self.wake_read, wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._stop())
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self.wake_read, selectors.EVENT_READ, self._reap)
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, self._worker_gone)

    def serve(self) -> None:
        while not (self.stopping or self.stale) or self.children:
            for key, _ in self.selector.select():
                key.data(key.fileobj)
            self._reap(None)  # a SIGCHLD that came while its wake-up byte was being drained
        if self.stale and not self.stopping:
            _note("re-executing to load the changed modules")
            self.listener.close()
            os.execv(sys.executable, [sys.executable, "-m", "deployments.fork_server", self.path])

    def _stop(self) -> None:
        """Accept no more runs; end once the running ones have ended (their processes wait for their end)."""
        if not self.stopping:
            self.stopping = True
            self._close_listener()

    def _close_listener(self) -> None:
        if self.listener.fileno() >= 0:
            self.selector.unregister(self.listener)
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _worker_gone(self, fileobj: Any) -> None:
        self.selector.unregister(fileobj)
        self._stop()

    def _accept(self, _: Any) -> None:
        try:
            connection, _address = self.listener.accept()
        except OSError:  # closed by SIGTERM since select() reported it
            return
        fds: list[int] = []
        try:
            connection.settimeout(10)
            header, fds, _flags, _addr = socket.recv_fds(connection, HEADER.size, 3)
            (size,) = HEADER.unpack(header)
            if len(fds) != 3 or size > MAX_REQUEST:
                raise ValueError("malformed request")
            request = json.loads(_read_exactly(connection, size))
            refusal = self._refusal(request)
            if refusal:
                connection.sendall(f"refused {refusal}\n".encode())
                connection.close()
                return
            pid = os.fork()
            if pid == 0:
                self._child(request, fds, connection)
            connection.sendall(f"pid {pid}\n".encode())
        except (OSError, ValueError) as error:
            _note(f"could not start a run: {type(error).__name__}: {error}")
            connection.close()
            return
        finally:
            for fd in fds:
                os.close(fd)
        connection.settimeout(None)
        self.children[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ, lambda _: self._caller_gone(pid))

    def _refusal(self, request: dict[str, Any]) -> str | None:
        if not self.stale and any(_mtime(path) != mtime for path, mtime in self.loaded.items()):
            self.stale = True
            self._close_listener()
            _note("a module it imported changed; re-executing once its runs have ended")
        if self.stale:
            return "stale: a module it imported has changed since it started"
        env: dict[str, str] = request["env"]
        differ = sorted(name for name in set(env) | set(os.environ) if name.startswith(PROJECT_PREFIX)
                        and name != SOCKET_VARIABLE and env.get(name) != os.environ.get(name))  # fmt: skip
        if differ:
            return f"the run sets {', '.join(differ)} otherwise than the worker"
        for name, (soft, hard) in request["limits"].items():
            _own_soft, own_hard = resource.getrlimit(LIMITS[name])
            if not _within(hard, own_hard) or not _within(soft, own_hard):
                return f"{name} above the fork server's"
        return None

    def _caller_gone(self, pid: int) -> None:
        """The run's process (the PID Prefect knows) ended without its run: kill the run, as if in one."""
        connection = self.children.get(pid)
        if connection is not None:
            self.selector.unregister(connection)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _reap(self, _: Any) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_read, 512):
                pass
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is None:
                continue
            ended = (f"signal {os.WTERMSIG(status)}\n" if os.WIFSIGNALED(status)
                     else f"exit {os.waitstatus_to_exitcode(status)}\n")  # fmt: skip
            with contextlib.suppress(KeyError):
                self.selector.unregister(connection)
            with contextlib.suppress(OSError):
                connection.sendall(ended.encode())
            connection.close()

    def _child(self, request: dict[str, Any], fds: list[int], connection: socket.socket) -> None:
        """The run's process, from the fork to its end: never returns."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            for other in (self.listener, connection, *self.children.values()):
                other.close()
            os.close(self.wake_read)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            os.umask(request["umask"])
            for name, (soft, hard) in request["limits"].items():
                if resource.getrlimit(LIMITS[name]) != (soft, hard):
                    resource.setrlimit(LIMITS[name], (soft, hard))
            niceness = request["nice"] - os.getpriority(os.PRIO_PROCESS, 0)
            if niceness > 0:
                os.nice(niceness)
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv[:] = request["argv"]
            sys.path[0] = request["path0"]
            code = _run_engine()
        except BaseException:  # the run's process reports what ended it, and never returns into the server
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)


def _run_engine() -> int:
    """Prefect's engine as `python -m deployments.engine` runs it, with Prefect's settings and logging rebuilt
    from the run's environment first; returns the exit code, after the exit hooks have run."""
    import atexit
    import logging

    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    from deployments.engine import run_engine

    refresh_global_settings_context()
    setup_logging(incremental=False)
    try:
        run_engine()
        code = 0
    except SystemExit as ended:
        code = ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
        if isinstance(ended.code, str):
            print(ended.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _within(value: int, limit: int) -> bool:
    return limit == resource.RLIM_INFINITY or (value != resource.RLIM_INFINITY and value <= limit)


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = connection.recv(min(size, 1 << 16))
        if not chunk:
            raise ValueError("request cut short")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def preload() -> dict[str, int]:
    """Import what every flow run imports; returns the imported modules' files and their mtimes."""
    import importlib

    from deployments.engine import PRELOADED
    from integrations.process import long_lived_imports

    with long_lived_imports():
        for module in (*PRELOADED, *PRELOADED_FLOWS):
            importlib.import_module(module)
    files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    return {path: _mtime(path) for path in files if isinstance(path, str)}


def main(argv: list[str]) -> int:
    import threading

    if len(argv) != 1:
        print("usage: python -m deployments.fork_server SOCKET", file=sys.stderr)
        return 2
    started = time.monotonic()
    loaded = preload()
    if threading.active_count() != 1:
        _note(f"not serving: its imports started threads ({threading.enumerate()}), and forking them is unsafe")
        return 1
    server = ForkServer(argv[0], loaded)
    rss = _rss_mib()
    _note(f"ready on {argv[0]} (pid {os.getpid()}): {len(sys.modules)} modules imported in "
          f"{time.monotonic() - started:.1f} s, {rss:.0f} MiB resident")  # fmt: skip
    server.serve()
    return 0


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:")), 0.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
