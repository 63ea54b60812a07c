"""Chunk planner: split a selection so that no request exceeds ``maxDataCells``.

Pure functions over dimension sizes (the number of selected values per variable, in metadata order; only
variables selected by value are ever split - eliminated ones are not part of a request at all).

Algorithm
1. Grid search: for every dimension pick a block length ``b_i`` (candidates ``ceil(n_i / k)``) with
   ``prod(b_i) <= max_cells`` minimising ``prod(ceil(n_i / b_i))``; depth-first with a lower-bound prune.
   This is the mixed-radix idea: several dimensions can be cut at once when one alone cannot reach the
   lower bound (e.g. 7 x 100 with 20 cells -> 1 x 20 blocks, 35 requests = the bound).
2. Packing: the uniform grid leaves remainder blocks. Boxes that agree on every other dimension are
   first-fit-decreasing packed along one dimension (any union of value lists is still a valid request),
   repeated over all dimensions until nothing merges. Done for the best few grids, the best result wins.
The result is deterministic. Requests stay within 10 % of ``ceil(cells / max_cells)`` whenever a grid or
packed-grid plan can do so (non-guillotine "pinwheel" tilings are not searched).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from regionstat.errors import TooManyCellsError

__all__ = ["ChunkPlan", "lower_bound", "plan_chunks"]

Chunk = tuple[tuple[int, ...], ...]  # per dimension: the selected positions (sorted) in this request


@dataclass(frozen=True)
class ChunkPlan:
    sizes: tuple[int, ...]
    max_cells: int
    chunks: tuple[Chunk, ...]

    @property
    def cells(self) -> int:
        return math.prod(self.sizes)

    @property
    def lower_bound(self) -> int:
        return lower_bound(self.sizes, self.max_cells)

    @property
    def requests(self) -> int:
        return len(self.chunks)

    def chunk_cells(self, chunk: Chunk) -> int:
        return math.prod(len(p) for p in chunk)

    def __len__(self) -> int:
        return len(self.chunks)


def lower_bound(sizes: Sequence[int], max_cells: int) -> int:
    cells = math.prod(sizes)
    if max_cells <= 0:
        return 1
    return max(1, -(-cells // max_cells))


def _candidates(n: int, cap: int) -> list[int]:
    """Distinct block lengths ceil(n/k) <= cap, descending."""
    out: list[int] = []
    k = 1
    while k <= n:
        b = -(-n // k)
        if b <= cap and (not out or out[-1] != b):
            out.append(b)
        # jump to the next k that gives a smaller ceil(n/k)
        if b == 1:
            break
        k = -(-n // (b - 1)) if b > 1 else n + 1
    return out


def _grid_search(sizes: Sequence[int], max_cells: int, keep: int) -> list[tuple[int, tuple[int, ...]]]:
    """The ``keep`` best uniform grids as (requests, block lengths per dim), best first."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    ns = [sizes[i] for i in order]
    suffix = [1] * (len(ns) + 1)
    for i in range(len(ns) - 1, -1, -1):
        suffix[i] = suffix[i + 1] * ns[i]
    cands = [_candidates(n, max_cells) for n in ns]
    heap: list[tuple[int, int, tuple[int, ...]]] = []  # (-count, tiebreak, blocks) max-heap of kept
    seq = 0

    def worst() -> int:
        return -heap[0][0] if len(heap) >= keep else 1 << 62

    blocks = [0] * len(ns)

    def dfs(i: int, prod_b: int, count: int) -> None:
        nonlocal seq
        if i == len(ns):
            if count < worst() or len(heap) < keep:
                out = [0] * len(ns)
                for j, b in zip(order, blocks, strict=True):
                    out[j] = b
                seq += 1
                item = (-count, -seq, tuple(out))
                if len(heap) < keep:
                    heapq.heappush(heap, item)
                else:
                    heapq.heapreplace(heap, item)
            return
        room = max_cells // prod_b
        for b in cands[i]:
            if b > room:
                continue
            c = count * -(-ns[i] // b)
            rest_room = max_cells // (prod_b * b)
            bound = c * -(-suffix[i + 1] // rest_room)
            if bound > worst() or (bound == worst() and len(heap) >= keep):
                continue
            blocks[i] = b
            dfs(i + 1, prod_b * b, c)

    dfs(0, 1, 1)
    return sorted(((-negc, blocks_) for negc, _, blocks_ in heap), key=lambda t: (t[0], _split_dims(t[1], sizes)))


def _split_dims(blocks: Sequence[int], sizes: Sequence[int]) -> int:
    return sum(1 for b, n in zip(blocks, sizes, strict=True) if b < n)


def _grid_boxes(sizes: Sequence[int], blocks: Sequence[int]) -> list[Chunk]:
    per_dim = [[tuple(range(s, min(s + b, n))) for s in range(0, n, b)] for n, b in zip(sizes, blocks, strict=True)]
    boxes: list[Chunk] = [()]
    for parts in per_dim:
        boxes = [(*box, p) for box in boxes for p in parts]
    return boxes


def _pack(boxes: list[Chunk], max_cells: int) -> list[Chunk]:
    """Merge boxes that agree on all dimensions but one (first-fit decreasing), until nothing changes."""
    ndim = len(boxes[0]) if boxes else 0
    changed = True
    while changed and len(boxes) > 1:
        changed = False
        for d in range(ndim):
            groups: dict[Chunk, list[tuple[int, ...]]] = {}
            for box in boxes:
                key = box[:d] + box[d + 1 :]
                groups.setdefault(key, []).append(box[d])
            if all(len(g) == 1 for g in groups.values()):
                continue
            merged: list[Chunk] = []
            for key, parts in groups.items():
                other = math.prod(len(p) for p in key)
                cap = max_cells // other
                bins: list[list[int]] = []
                fill: list[int] = []
                for part in sorted(parts, key=lambda p: (-len(p), p)):
                    for k, used in enumerate(fill):
                        if used + len(part) <= cap:
                            bins[k].extend(part)
                            fill[k] += len(part)
                            break
                    else:
                        bins.append(list(part))
                        fill.append(len(part))
                if len(bins) < len(parts):
                    changed = True
                for b in bins:
                    merged.append((*key[:d], tuple(sorted(b)), *key[d:]))
            boxes = merged
    return boxes


def _grid_pack(sizes: tuple[int, ...], max_cells: int, keep: int) -> list[Chunk]:
    """Best of the ``keep`` best uniform grids, each followed by packing of its remainder blocks."""
    lb = lower_bound(sizes, max_cells)
    best: list[Chunk] | None = None
    for _count, blocks in _grid_search(sizes, max_cells, keep):
        if best is not None and len(best) <= lb:
            break
        boxes = _grid_boxes(sizes, blocks)
        if any(n % b for n, b in zip(sizes, blocks, strict=True)):
            boxes = _pack(boxes, max_cells)
        if best is None or len(boxes) < len(best):
            best = boxes
    assert best is not None
    return best


def _split_points(n: int, limit: int = 48) -> list[int]:
    if n - 1 <= limit:
        return list(range(1, n))
    pts: set[int] = set()
    for b in _candidates(n, n)[1:9]:
        pts.update(range(b, n, b))
    step = max(1, n // limit)
    pts.update(range(step, n, step))
    return sorted(pts)[: 4 * limit]


class _Planner:
    """Grid+pack, refined by two-slab splits (plan both slabs independently), memoised, time-bounded."""

    def __init__(self, max_cells: int, keep: int, budget_s: float) -> None:
        self.max_cells = max_cells
        self.keep = keep
        self.deadline = time.perf_counter() + budget_s
        self.memo: dict[tuple[tuple[int, ...], int], list[Chunk]] = {}

    def plan(self, sizes: tuple[int, ...], depth: int, good_enough: int = 0) -> list[Chunk]:
        key = (sizes, depth)
        if key in self.memo:
            return self.memo[key]
        if math.prod(sizes) <= self.max_cells:
            res: list[Chunk] = [tuple(tuple(range(n)) for n in sizes)]
            self.memo[key] = res
            return res
        best = _grid_pack(sizes, self.max_cells, self.keep)
        lb = lower_bound(sizes, self.max_cells)
        if depth > 0 and len(best) > max(lb, good_enough):
            for d, n in enumerate(sizes):
                for a in _split_points(n):
                    if len(best) <= lb or time.perf_counter() > self.deadline:
                        break
                    s1 = (*sizes[:d], a, *sizes[d + 1 :])
                    s2 = (*sizes[:d], n - a, *sizes[d + 1 :])
                    if lower_bound(s1, self.max_cells) + lower_bound(s2, self.max_cells) >= len(best):
                        continue
                    p1 = self.plan(s1, depth - 1)
                    if len(p1) + lower_bound(s2, self.max_cells) >= len(best):
                        continue
                    p2 = self.plan(s2, depth - 1)
                    if len(p1) + len(p2) < len(best):
                        shifted = [(*box[:d], tuple(i + a for i in box[d]), *box[d + 1 :]) for box in p2]
                        best = p1 + shifted
        self.memo[key] = best
        return best


def plan_chunks(
    sizes: Sequence[int],
    max_cells: int,
    *,
    table_id: str = "?",
    max_requests: int | None = None,
    keep: int = 24,
    depth: int = 2,
    budget_s: float = 0.5,
) -> ChunkPlan:
    """Plan requests for a cube of ``sizes`` values per dimension so that none exceeds ``max_cells``.

    ``max_cells <= 0`` means "no limit" (one request). Raises TooManyCellsError if the plan would need
    more than ``max_requests`` requests. ``depth``/``budget_s`` bound the slab refinement (only run when
    grid+pack misses the lower bound).
    """
    sizes = tuple(int(s) for s in sizes)
    if any(s < 1 for s in sizes):
        raise ValueError(f"table {table_id}: every selected variable needs at least one value: {sizes}")
    cells = math.prod(sizes)
    if max_cells <= 0 or cells <= max_cells:
        return ChunkPlan(sizes, max(max_cells, 0), (tuple(tuple(range(n)) for n in sizes),))
    good_enough = int(1.1 * lower_bound(sizes, max_cells) + 1e-9)
    best = list(_Planner(max_cells, keep, budget_s).plan(sizes, depth, good_enough))
    if max_requests is not None and len(best) > max_requests:
        raise TooManyCellsError(table_id, cells, max_cells)
    best.sort(key=lambda box: tuple(p[0] for p in box))
    return ChunkPlan(sizes, max_cells, tuple(best))
