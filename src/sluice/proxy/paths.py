"""Which provider paths may go upstream: no dot segments, no fragment.

A stored key is attached to every forwarded request, so the path must stay under the provider's
base path. An upstream or proxy that normalises paths resolves ``..`` (also ``%2e%2e``, ``.%2E``,
``..%2f..`` or ``..\\``, and their double-encoded forms) above that base, so any ``.``/``..``
segment is refused rather than normalised. A raw ``#`` would cut the path (the rest never reaches
the provider), so it is refused too. Pure: the data plane calls ``check`` before choosing a key.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from sluice.errors import GatewayError

FRAGMENT_KEY = "sluice.fragment"  # set in the scope by protocol.py when the target held a '#'
DOTS = frozenset({".", ".."})
_RAW_DOTS = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
DECODE_ROUNDS = 2  # once as the upstream would, once more for a double-encoding proxy in between


def _pieces(segment: str) -> list[str]:
    """The segment as an upstream might read it: decoded, then split on ``/`` and ``\\``."""
    forms = [segment]
    for _ in range(DECODE_ROUNDS):
        if "%" not in forms[-1]:
            break
        forms.append(unquote(forms[-1]))
    return [piece for form in forms for piece in form.replace("\\", "/").split("/")]


def has_dot_segment(path: str) -> bool:
    if "%" not in path and "\\" not in path:  # the common path: nothing to decode, one regex at most
        return "." in path and _RAW_DOTS.search(path) is not None
    return any(piece in DOTS for segment in path.split("/") for piece in _pieces(segment))


def check(path: str, fragment: bool) -> None:
    """Raise a 400 (AiGatewayError 2002) for a path that could escape the provider's base path."""
    if fragment or "#" in path:
        raise GatewayError(400, 2002, "path: '#' is not allowed in a gateway path (a fragment is never "
                                      "sent to the provider); percent-encode it as %23")
    if has_dot_segment(path):
        raise GatewayError(400, 2002, "path: '.' and '..' segments (also percent-encoded, e.g. %2e%2e) "
                                      "are not allowed in a gateway path")
