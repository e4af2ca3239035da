"""uvicorn's httptools protocol, telling the application when the request target held a ``#``.

httptools drops a fragment from the path it hands to ASGI, so ``/x#/../y`` would reach the data
plane as ``/x``: the request is answered for another path than the one sent. The raw target is
only visible here; ``scope["sluice.fragment"]`` carries the fact to the data plane (``paths.py``).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sluice.proxy.paths import FRAGMENT_KEY


class HttpProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        if b"#" in self.url:
            self.scope[FRAGMENT_KEY] = True  # type: ignore[literal-required]  # the scope dict the task gets
        super().on_headers_complete()
