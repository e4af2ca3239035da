"""Key shapes are masked in stored bodies; the fast prefix scan agrees with the plain one."""

from __future__ import annotations

import platform
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.logs import redact

KEYS = [
    b"sluice_" + b"A" * 24,
    b"sk-" + b"a" * 40,
    b"sk-ant-api03-" + b"b" * 40,
    b"sk-proj-" + b"c" * 40,
    b"gsk_" + b"d" * 40,
    b"xai-" + b"e" * 40,
    b"AIza" + b"f" * 35,
    b"hf_" + b"g" * 30,
    b"r8_" + b"h" * 30,
]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k[:7].decode())
def test_every_key_shape_is_masked_inside_json_and_sse(key: bytes) -> None:
    for body in (b'{"content":"' + key + b'"}', b'data: {"delta":"x ' + key + b' y"}\n\n', key):
        out = redact.redact_body(body)
        assert key not in out and redact.MASK in out
        assert redact.has_key_prefix(body)


def test_a_body_without_keys_is_returned_as_is() -> None:
    body = b'data: {"id":"chatcmpl-abc","choices":[{"delta":{"content":"hi"}}]}\n\n' * 20
    assert redact.redact_body(body) is body
    assert redact.redact_body(b"") == b""
    assert not redact.has_key_prefix(body)


HYPERSCAN_PINNED = sys.platform == "linux" and platform.machine() == "x86_64"  # pyproject.toml's marker


def test_the_fast_scan_is_in_use_where_it_is_pinned() -> None:
    # The fallback must not hide a broken install where the wheel is pinned (CI: Linux x86-64).
    if HYPERSCAN_PINNED:
        assert redact.hyperscan is not None and redact.has_key_prefix is redact._has_prefix_simd
    else:
        chosen = redact._has_prefix_simd if redact.hyperscan else redact._has_prefix_plain
        assert redact.has_key_prefix is chosen


_ALPHABET = st.sampled_from([b"s", b"k", b"-", b"_", b"g", b"x", b"a", b"i", b"A", b"I", b"z", b"h", b"f",
                             b"r", b"8", b"l", b"u", b"c", b"e", b" ", b'"'])


@given(st.lists(_ALPHABET | st.binary(max_size=3), max_size=60).map(b"".join),
       st.sampled_from((*redact._PREFIXES, b"")), st.integers(min_value=0))
def test_fast_and_plain_prefix_scans_agree(noise: bytes, prefix: bytes, at: int) -> None:
    at %= len(noise) + 1
    body = noise[:at] + prefix + noise[at:]
    assert redact.has_key_prefix(body) == redact._has_prefix_plain(body) == (prefix != b"" or any(
        p in body for p in redact._PREFIXES))


def test_scans_from_two_threads_do_not_share_scratch_space() -> None:
    body = b"x" * 10_000 + b"hf_"
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            for _ in range(2000):
                assert redact.has_key_prefix(body)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
