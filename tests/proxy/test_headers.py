"""Header filtering (pure): what goes upstream and what comes back."""

from __future__ import annotations

from sluice.proxy.headers import (
    connection_options,
    response_headers,
    split_request,
    uncompressed,
    with_stored_key,
)

WATCHED = frozenset({b"authorization", b"x-api-key"})


def test_request_filtering() -> None:
    raw = [
        (b"host", b"gateway"), (b"content-length", b"12"), (b"connection", b"keep-alive"),
        (b"keep-alive", b"timeout=5"), (b"transfer-encoding", b"chunked"), (b"te", b"trailers"),
        (b"upgrade", b"h2c"), (b"proxy-authorization", b"Basic x"), (b"proxy-foo", b"1"), (b"trailer", b"x"),
        (b"expect", b"100-continue"),
        (b"cf-aig-authorization", b"Bearer sluice_abc"), (b"cf-aig-byok-alias", b"main"),
        (b"cf-aig-request-timeout", b"500"),
        (b"authorization", b"Bearer sk-own"), (b"content-type", b"application/json"), (b"x-custom", b"v"),
        (b"x-other", b"token sluice_leak"),
    ]
    forward, control = split_request(raw, WATCHED)
    assert forward == [("authorization", "Bearer sk-own"), ("content-type", "application/json"),
                       ("x-custom", "v")]
    assert control == {
        "content-length": "12", "cf-aig-authorization": "Bearer sluice_abc", "cf-aig-byok-alias": "main",
        "cf-aig-request-timeout": "500", "authorization": "Bearer sk-own", "x-other": "token sluice_leak",
        "upgrade": "h2c",  # kept for the data plane to refuse, never forwarded
    }


def test_gateway_token_in_an_auth_header_is_never_forwarded() -> None:
    forward, control = split_request([(b"authorization", b"Bearer sluice_xyz"), (b"accept", b"*/*")], WATCHED)
    assert forward == [("accept", "*/*")]
    assert control["authorization"] == "Bearer sluice_xyz"


def test_first_occurrence_wins_in_control() -> None:
    _, control = split_request([(b"cf-aig-byok-alias", b"a"), (b"cf-aig-byok-alias", b"b")], WATCHED)
    assert control["cf-aig-byok-alias"] == "a"


def test_stored_key_replaces_every_auth_header_and_adds_missing_extras() -> None:
    forward = [("authorization", "Bearer sk-own"), ("x-api-key", ""), ("anthropic-version", "2099-01-01"),
               ("accept", "*/*"), ("accept-encoding", "gzip, br")]
    out = with_stored_key(forward, frozenset({"x-api-key", "authorization"}), ("x-api-key", "sk-stored"),
                          (("anthropic-version", "2023-06-01"), ("anthropic-beta", "b")))
    # the caller's accept-encoding gives way to identity: the answer is masked as it is relayed
    assert out == [("anthropic-version", "2099-01-01"), ("accept", "*/*"), ("x-api-key", "sk-stored"),
                   ("accept-encoding", "identity"), ("anthropic-beta", "b")]


def test_uncompressed_replaces_the_callers_accept_encoding() -> None:
    assert uncompressed([("accept-encoding", "gzip"), ("accept", "*/*")]) == [("accept", "*/*"),
                                                                              ("accept-encoding", "identity")]
    assert uncompressed([]) == [("accept-encoding", "identity")]


def test_response_filtering() -> None:
    raw = ((b"Content-Type", b"text/event-stream"), (b"Transfer-Encoding", b"chunked"),
           (b"Connection", b"close"),
           (b"Date", b"x"), (b"Content-Length", b"5"), (b"X-Request-Id", b"r1"))
    out = response_headers(raw, [(b"cf-aig-log-id", b"01J")])
    assert out == [(b"content-type", b"text/event-stream"), (b"content-length", b"5"),
                   (b"x-request-id", b"r1"),
                   (b"cf-aig-log-id", b"01J")]


def test_headers_a_connection_header_names_are_hop_by_hop() -> None:
    assert connection_options(b"keep-alive") == set() and connection_options(b"Close") == set()
    assert connection_options(b"Keep-Alive, X-Hop ,x-other,, close") == {b"x-hop", b"x-other"}
    raw = [(b"connection", b"keep-alive, X-Hop"), (b"x-hop", b"1"), (b"x-kept", b"2"),
           (b"connection", b"x-second"), (b"x-second", b"3"), (b"cf-aig-byok-alias", b"main")]
    forward, control = split_request(raw, WATCHED)
    assert forward == [("x-kept", "2")]
    assert control == {"cf-aig-byok-alias": "main"}  # the gateway is the hop that reads its own headers
    out = response_headers(((b"Connection", b"X-Trace"), (b"X-Trace", b"t"), (b"X-Request-Id", b"r1")), [])
    assert out == [(b"x-request-id", b"r1")]
