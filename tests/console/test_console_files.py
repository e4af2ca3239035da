"""How /console/ is served (docs/console.md, "Security" and "Size"): headers, a closed set of files,
caching, the off switch, and the compressed weight of what the browser loads."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import pytest

from sluice.console.serve import STATIC
from tests.support.server import Server

BUDGET = 200 * 1024  # bytes, gzip-compressed: everything the provider-keys page loads


def test_index_carries_the_security_headers(server: Server) -> None:
    response = httpx.get(f"{server.url}/console/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers


def test_no_inline_script_or_style_and_no_other_origin() -> None:
    for path in STATIC.rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path  # every script is a file
        assert "style=" not in html and "<style" not in html and "on" + "click=" not in html
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path
    for path in STATIC.rglob("*.js"):
        text = path.read_text()
        if path.parent.name != "vendor":
            assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, path
            assert not re.search(r"https?://", text), path


def test_only_packaged_files_are_served(server: Server) -> None:
    assert httpx.get(f"{server.url}/console", follow_redirects=False).headers["location"] == "/console/"
    for path in ("/console/../settings.py", "/console/%2e%2e/app.py", "/console/serve.py", "/console/js/",
                 "/console/nope.js", "/consolex"):
        assert httpx.get(f"{server.url}{path}").status_code == 404, path
    assert httpx.post(f"{server.url}/console/index.html").status_code == 405


def test_etag_and_gzip(server: Server) -> None:
    plain = httpx.get(f"{server.url}/console/js/app.js", headers={"accept-encoding": "identity"})
    assert plain.content == (STATIC / "js" / "app.js").read_bytes()
    assert plain.headers["content-type"].startswith("text/javascript")
    again = httpx.get(f"{server.url}/console/js/app.js", headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    gzip_only = {"accept-encoding": "gzip"}
    with httpx.stream("GET", f"{server.url}/console/js/app.js", headers=gzip_only) as zipped:
        raw = b"".join(zipped.iter_raw())
    assert zipped.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == plain.content


def test_assets_fit_the_budget(server: Server) -> None:
    """Every file the console ships, as sent compressed: an upper bound of what any page loads."""
    total = 0
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file() and p.suffix in (".html", ".js", ".css",
                                                                                     ".svg")):
        url = f"{server.url}/console/{path.relative_to(STATIC).as_posix()}"
        with httpx.stream("GET", url, headers={"accept-encoding": "gzip"}) as response:
            assert response.status_code == 200, url
            total += len(b"".join(response.iter_raw()))
    print(f"console assets, gzip: {total} bytes")  # recorded in docs/console.md
    assert total <= BUDGET


@pytest.mark.parametrize("setting", ["off"])
def test_the_console_can_be_turned_off(tmp_path: Path, setting: str) -> None:
    own = Server(tmp_path / "data", env={"SLUICE_CONSOLE": setting}).start()
    try:
        assert httpx.get(f"{own.url}/console/").status_code == 404
        assert httpx.get(f"{own.url}/console/js/app.js").status_code == 404
        assert httpx.get(f"{own.api}/sluice/identity", headers=own.headers()).status_code == 200
    finally:
        own.stop()
