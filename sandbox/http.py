"""The HTTP server both sandboxes run on."""

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class SandboxHTTPServer(ThreadingHTTPServer):
    """A thread per connection. A client that goes away mid-request (a run killed with `kill -9`, kubectl killed
    for its timeout) is part of what the sandboxes are for, so it is not reported as a server error; any other
    exception still is, as the standard library reports it."""

    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
