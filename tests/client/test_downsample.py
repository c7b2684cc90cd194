"""Display downsampling of curves: bounded length, ends and extremes always kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.tracked import downsample_min_max

curves = st.lists(
    st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=0, max_size=600
)


@settings(max_examples=300, deadline=None)
@given(values=curves, max_points=st.integers(min_value=4, max_value=200))
def test_downsampling_is_bounded_ordered_and_keeps_ends_and_extremes(
    values: list[float], max_points: int
) -> None:
    steps = [10 * i for i in range(len(values))]
    kept_steps, kept_values = downsample_min_max(steps, values, max_points=max_points)
    assert len(kept_steps) == len(kept_values) <= max(max_points, 0)
    assert kept_steps == sorted(set(kept_steps))
    # Every kept point is a real point of the curve.
    assert all(values[s // 10] == v for s, v in zip(kept_steps, kept_values, strict=True))
    if len(values) <= max_points:
        assert (kept_steps, kept_values) == (steps, values)
        return
    assert kept_steps[0] == steps[0]
    assert kept_steps[-1] == steps[-1]
    assert min(kept_values) == min(values)
    assert max(kept_values) == max(values)


def test_each_bucket_keeps_its_own_extremes() -> None:
    values = [0.0] * 1000
    for index in range(5, 1000, 100):
        values[index] = float(index)  # one peak in each tenth of the curve
    steps, kept = downsample_min_max(list(range(1000)), values, max_points=22)
    assert [s for s, v in zip(steps, kept, strict=True) if v > 0] == list(range(5, 1000, 100))


def test_too_few_points_to_keep_the_ends_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        downsample_min_max([1, 2, 3], [1.0, 2.0, 3.0], max_points=3)
