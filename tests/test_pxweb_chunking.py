"""The chunk planner (extract.chunking) as a pure function."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.chunking import lower_bound, plan_chunks
from regionstat.errors import TooManyCellsError


def _check_cover(sizes: tuple[int, ...], max_cells: int, plan) -> None:
    cover = np.zeros(sizes, dtype=np.int32)
    for chunk in plan.chunks:
        assert len(chunk) == len(sizes)
        assert plan.chunk_cells(chunk) <= max_cells
        for d, positions in enumerate(chunk):
            assert list(positions) == sorted(set(positions))
            assert all(0 <= p < sizes[d] for p in positions)
        cover[np.ix_(*[list(p) for p in chunk])] += 1
    assert (cover == 1).all(), "every cell exactly once"


def _best_uniform_grid(sizes: tuple[int, ...], max_cells: int) -> int:
    """Oracle: the best plan that cuts every dimension into equal blocks (exhaustive over block lengths)."""
    best = math.inf

    def rec(i: int, prod: int, count: int) -> None:
        nonlocal best
        if i == len(sizes):
            best = min(best, count)
            return
        for b in range(1, sizes[i] + 1):
            if prod * b <= max_cells:
                rec(i + 1, prod * b, count * -(-sizes[i] // b))

    rec(0, 1, 1)
    return int(best)


def _best_guillotine(sizes: tuple[int, ...], max_cells: int) -> int:
    """Oracle: the fewest boxes reachable by recursive straight cuts (small cubes only)."""

    @functools.cache
    def cost(shape: tuple[int, ...]) -> int:
        if math.prod(shape) <= max_cells:
            return 1
        lb = -(-math.prod(shape) // max_cells)
        best = math.prod(shape)
        for d, n in enumerate(shape):
            for a in range(1, n // 2 + 1):
                c = cost(tuple(sorted((*shape[:d], a, *shape[d + 1 :])))) + cost(
                    tuple(sorted((*shape[:d], n - a, *shape[d + 1 :])))
                )
                if c < best:
                    best = c
                    if best == lb:
                        return best
        return best

    return cost(tuple(sorted(sizes)))


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4).map(tuple), max_cells=st.integers(1, 3000))
def test_plan_properties(sizes: tuple[int, ...], max_cells: int) -> None:
    plan = plan_chunks(sizes, max_cells)
    _check_cover(sizes, max_cells, plan)
    lb = lower_bound(sizes, max_cells)
    assert plan.lower_bound == lb and plan.cells == math.prod(sizes)
    grid = _best_uniform_grid(sizes, max_cells)
    assert plan.requests <= grid
    if grid <= 1.1 * lb:  # feasible for a grid -> the planner must be within 10 % too
        assert plan.requests <= 1.1 * lb


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=3).map(tuple), max_cells=st.integers(2, 200))
def test_plan_matches_guillotine_optimum_on_small_cubes(sizes: tuple[int, ...], max_cells: int) -> None:
    plan = plan_chunks(sizes, max_cells)
    _check_cover(sizes, max_cells, plan)
    best = _best_guillotine(sizes, max_cells)
    # as good as the best guillotine plan, or already within the 10 % target
    assert plan.requests <= max(best, int(1.1 * plan.lower_bound))
    if best <= 1.1 * plan.lower_bound:
        assert plan.requests <= 1.1 * plan.lower_bound


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 5000), max_cells=st.integers(1, 1000))
def test_one_dimension_hits_the_lower_bound(n: int, max_cells: int) -> None:
    plan = plan_chunks([n], max_cells)
    assert plan.requests == lower_bound([n], max_cells)


@pytest.mark.parametrize(
    ("sizes", "max_cells"),
    [
        ((312, 4, 102, 2, 2, 57), 150_000),  # TAB638 everything
        ((290, 290, 2, 1, 5), 150_000),  # TAB1830 commuting flows
        ((312, 3, 3, 35), 150_000),  # TAB628
        ((290, 17, 2, 1, 6), 2_000),  # TAB3204 through a tight server
        ((100, 7), 20),  # needs a cut across the small dimension: 1x20 blocks
    ],
)
def test_realistic_shapes_within_ten_percent(sizes: tuple[int, ...], max_cells: int) -> None:
    plan = plan_chunks(sizes, max_cells)
    assert all(plan.chunk_cells(c) <= max_cells for c in plan.chunks)
    assert sum(plan.chunk_cells(c) for c in plan.chunks) == math.prod(sizes)
    assert plan.requests <= 1.1 * plan.lower_bound


def test_small_selection_is_one_request_and_plan_is_deterministic() -> None:
    assert plan_chunks([13, 3, 3], 150_000).chunks == ((tuple(range(13)), (0, 1, 2), (0, 1, 2)),)
    assert plan_chunks([13, 3, 3], 0).requests == 1  # 0 = no limit
    a = plan_chunks([29, 17, 8], 1341)
    b = plan_chunks([29, 17, 8], 1341)
    assert a == b
    firsts = [tuple(p[0] for p in c) for c in a.chunks]
    assert firsts == sorted(firsts)


def test_too_many_requests_raises() -> None:
    with pytest.raises(TooManyCellsError, match="TABX"):
        plan_chunks([1000, 1000], 10, table_id="TABX", max_requests=100)
    with pytest.raises(ValueError):
        plan_chunks([3, 0], 10)
