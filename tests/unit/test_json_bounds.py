"""Measuring untrusted JSON before parsing: the depth is exact, the value bound is never low, and the
measure stays linear on text built to make a string scanner backtrack."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartpump.json_bounds import JsonLimits, measure

_TRICKY = st.text(alphabet='[]{},"\\:ab\u00e9', max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=25,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _count(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(map(_count, value))
    if isinstance(value, dict):
        return 1 + sum(map(_count, value.values()))
    return 1


@given(_VALUES, st.booleans())
def test_depth_is_exact_and_values_never_undercounted(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    shape = measure(raw)
    assert shape.depth == _depth(value)
    assert shape.values >= _count(value)


def test_unclosed_brackets_count_as_levels() -> None:
    assert measure(b"[" * 2000).depth == 2000
    assert measure(b'{"a":' * 100).depth == 100


def test_brackets_in_an_unterminated_string_do_not_count() -> None:
    assert measure(b'["' + b"]" * 50 + b"[" * 50).depth == 1


def test_limits_name_the_first_excess() -> None:
    limits = JsonLimits(max_depth=3, max_values=10)
    assert limits.first_excess(b"[[[1]]]") is None
    deep = limits.first_excess(b"[[[[1]]]]")
    assert deep is not None and deep[0] == "depth"
    many = limits.first_excess(json.dumps(list(range(20))).encode())
    assert many is not None and many[0] == "values"
    assert JsonLimits(max_depth=3).first_excess(json.dumps(list(range(20))).encode()) is None


def test_escape_heavy_text_is_measured_in_linear_time() -> None:
    # A backtracking string pattern takes minutes on these (each quote restarts a scan to the end).
    started = time.perf_counter()
    for raw in (b'"' + b'\\"' * 300_000, b'"' + b'\\"' * 300_000 + b"\\", b'"\\' * 300_000):
        measure(raw)
    assert time.perf_counter() - started < 10
