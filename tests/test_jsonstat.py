"""JSON-stat 2.0 -> Arrow decoding (extract.jsonstat)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.jsonstat import BOM, _split_values, decode_jsonstat2, parse_cube
from regionstat.errors import ResponseError
from tests.conftest import REFERENCE_DATA

FIXTURE = REFERENCE_DATA / "scb_v2_responses" / "TAB5839_ostergotland_subset.jsonstat2.json"


def _cell(t: pa.Table, **codes: str) -> tuple[float | None, str | None]:
    rows = t.to_pylist()
    hit = [r for r in rows if all(r[k] == v for k, v in codes.items())]
    assert len(hit) == 1, (codes, hit)
    return hit[0]["value"], hit[0]["status"]


def test_decode_real_scb_response() -> None:
    t = decode_jsonstat2(FIXTURE.read_bytes())
    assert t.column_names == ["Region", "Kon", "ContentsCode", "Tid", "value", "status"]
    assert t.num_rows == 13 * 1 * 2 * 3
    for c in ["Region", "Kon", "ContentsCode", "Tid", "status"]:
        assert pa.types.is_dictionary(t.schema.field(c).type) and t.schema.field(c).type.value_type == pa.string()
    assert t.schema.field("Region").type.index_type == pa.int8()  # 13 regions: the smallest index type
    assert t.schema.field("value").type == pa.float64()
    assert _cell(t, Region="0580", ContentsCode="00000548", Tid="2021") == (11792.0, None)
    assert _cell(t, Region="0580", ContentsCode="00000546", Tid="2021") == (69141.0, None)
    assert _cell(t, Region="0509", ContentsCode="00000548", Tid="2019") == (1172.0, None)
    assert t.column("status").null_count == t.num_rows


def test_bom_and_labels() -> None:
    raw = FIXTURE.read_bytes()
    t = decode_jsonstat2(BOM + raw, labels=True)
    assert t.column_names[:2] == ["Region", "Region_label"]
    first = t.slice(42, 1).to_pylist()[0]
    assert first["Region"] == "0580" and first["Region_label"] == "Linköping"
    assert decode_jsonstat2(orjson.loads(raw)).equals(decode_jsonstat2(raw))


def _doc(sizes: list[int], values, status=None, index_as_list: bool = False) -> dict:
    ids = [f"D{i}" for i in range(len(sizes))]
    dims = {}
    for d, n in zip(ids, sizes, strict=True):
        codes = [f"{d}c{j}" for j in range(n)]
        index = codes if index_as_list else {c: j for j, c in enumerate(codes)}
        dims[d] = {"label": d, "category": {"index": index, "label": {c: c.upper() for c in codes}}}
    doc = {"version": "2.0", "class": "dataset", "id": ids, "size": sizes, "dimension": dims, "value": values}
    if status is not None:
        doc["status"] = status
    return doc


def test_sparse_values_status_dict_and_nulls() -> None:
    doc = _doc([2, 3], {"0": 1.5, "4": 7}, status={"1": "..", "5": "."})
    t = decode_jsonstat2(orjson.dumps(doc))
    assert t.column("value").to_pylist() == [1.5, None, None, None, 7.0, None]
    assert t.column("status").to_pylist() == [None, "..", None, None, None, "."]
    assert t.column("D0").to_pylist() == ["D0c0"] * 3 + ["D0c1"] * 3
    assert t.column("D1").to_pylist() == ["D1c0", "D1c1", "D1c2"] * 2


def test_status_list_and_string_and_index_list() -> None:
    t = decode_jsonstat2(_doc([3], [1, None, 3], status=[None, "..", None], index_as_list=True))
    assert t.column("status").to_pylist() == [None, "..", None]
    assert t.column("value").to_pylist() == [1.0, None, 3.0]
    t = decode_jsonstat2(_doc([2], [1, 2], status="p"))
    assert t.column("status").to_pylist() == ["p", "p"]


def test_truncated_and_wrong_length_raise() -> None:
    raw = FIXTURE.read_bytes()
    with pytest.raises(ResponseError, match="not valid JSON"):
        decode_jsonstat2(raw[: len(raw) // 2])
    with pytest.raises(ResponseError, match="cells"):
        decode_jsonstat2(_doc([2, 2], [1, 2, 3]))


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
)
def test_decode_matches_naive_loop(sizes: list[int], data: st.DataObject) -> None:
    n = math.prod(sizes)
    values = data.draw(
        st.lists(
            st.one_of(
                st.none(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32)
            ),
            min_size=n,
            max_size=n,
        )
    )
    status = data.draw(st.dictionaries(st.integers(0, n - 1).map(str), st.sampled_from(["..", ".", "-"]), max_size=n))
    t = decode_jsonstat2(orjson.dumps(_doc(sizes, values, status)))
    rows = t.to_pylist()
    for k, combo in enumerate(itertools.product(*[range(s) for s in sizes])):
        row = rows[k]
        for d, j in enumerate(combo):
            assert row[f"D{d}"] == f"D{d}c{j}"
        assert row["value"] == (None if values[k] is None else float(values[k]))
        assert row["status"] == status.get(str(k))


def test_decode_1m_cells_is_complete() -> None:
    """A 1 M-cell payload decodes completely; its speed is measured against peers in `make bench`."""
    sizes = [290, 2, 5, 345]  # 1,000,500 cells
    n = math.prod(sizes)
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 100_000, n).tolist()
    for i in range(0, n, 13):
        vals[i] = None
    doc = _doc(sizes, vals, status={str(i): ".." for i in range(0, n, 13)})
    table = decode_jsonstat2(BOM + orjson.dumps(doc))
    assert table.num_rows == n
    assert table.column("value").null_count == len(range(0, n, 13))
    assert table.column("status").null_count == n - len(range(0, n, 13))
    assert table.column("D0")[n - 1].as_py() == "D0c289"


def test_values_fast_path_is_bit_identical_to_orjson() -> None:
    """The value list read by Arrow's number parser equals orjson's floats bit for bit (shortest-repr doubles,
    large integers, negative zero, exponents)."""
    rng = np.random.default_rng(3)
    floats = (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000)).tolist()
    extra = [0.1, -0.0, 2**53 + 1, 10**17 + 3, 1e-320, 123456789012345678, 5e-324]
    values = [*floats, *extra, None]
    raw = orjson.dumps(_doc([len(values)], values))
    split = _split_values(raw)
    assert split is not None, "the fast path should apply to a flat number list"
    expected = np.array(orjson.loads(raw)["value"], dtype=np.float64)
    assert np.array_equal(split[1].view(np.int64)[:-1], expected.view(np.int64)[:-1])
    assert np.isnan(split[1][-1])


@pytest.mark.parametrize(
    "case",
    ["nested_value_first", "pretty_printed", "string_values"],
)
def test_values_fallback_gives_the_same_answer(case: str) -> None:
    """Where the cut-out does not apply, orjson decodes everything; the table is the same either way."""
    values: list = [1, None, 3, 4]
    doc = _doc([2, 2], values)
    if case == "nested_value_first":  # a '"value"' key before the dataset's own must not be taken for it
        doc = {"extension": {"value": [9, 9, 9, 9]}, **doc}
    if case == "string_values":
        doc["value"] = [1, "..", 3, 4]
    raw = orjson.dumps(doc, option=orjson.OPT_INDENT_2) if case == "pretty_printed" else orjson.dumps(doc)
    table = decode_jsonstat2(raw)
    assert table.equals(decode_jsonstat2(orjson.loads(raw)))
    assert table.column("value").to_pylist() == [1.0, None, 3.0, 4.0]


def test_integer_values_take_the_int64_path_bit_identically() -> None:
    """Integer-only lists (SCB's counts) are parsed as int64 then widened; huge ones fall back to the float parser."""
    ints = [0, -5, 2**53 + 1, 2**63 - 1, -(2**63), None, 987654321]
    for values in (ints, [*ints, 10**20]):  # orjson cannot write 10**20: put it into the bytes by hand
        raw = orjson.dumps(_doc([len(values)], [0 if v == 10**20 else v for v in values]))
        if 10**20 in values:
            raw = raw.replace(b",987654321,0]", b",987654321,100000000000000000000]")
        split = _split_values(raw)
        assert split is not None
        expected = np.array([np.nan if v is None else float(v) for v in values])
        assert float(orjson.loads(raw)["value"][-1] or 0) == float(values[-1] or 0)
        assert np.array_equal(split[1], expected, equal_nan=True)


def test_invalid_value_lists_are_refused() -> None:
    for body in (b"[1,,2,3]", b"[1,2,3,]", b"[1,2,3"):
        raw = orjson.dumps(_doc([4], [0, 0, 0, 0])).replace(b"[0,0,0,0]", body)
        with pytest.raises(ResponseError):
            parse_cube(raw)


def test_code_columns_are_dictionary_encoded_and_cast_to_plain_strings() -> None:
    t = decode_jsonstat2(orjson.dumps(_doc([2, 3], [1, 2, 3, 4, 5, 6], status={"2": ".."})))
    assert t.schema.field("D0").type == pa.dictionary(pa.int8(), pa.string())
    assert t.column("D0").cast(pa.string()).to_pylist() == ["D0c0"] * 3 + ["D0c1"] * 3
    assert t.column("status").cast(pa.string()).to_pylist() == [None, None, "..", None, None, None]


def test_status_object_stays_sparse_and_matches_the_dense_codes() -> None:
    n = 1000
    status = {"3": "..", "997": "p", "500": "..", "7": None}  # a null symbol: no status for that cell
    cube = parse_cube(orjson.dumps(_doc([10, 100], list(range(n)), status)))
    assert cube.status_positions is not None and cube.status_indices is not None
    assert sorted(cube.status_positions.tolist()) == [3, 500, 997]  # only the cells that carry one, no n-array
    dense = cube.status_codes
    assert dense is not None and (dense >= 0).sum() == 3 and dense[7] == -1
    assert [cube.status_symbols[dense[k]] for k in (3, 500, 997)] == ["..", "..", "p"]
    column = decode_jsonstat2(orjson.dumps(_doc([10, 100], list(range(n)), status))).column("status")
    assert column.null_count == n - 3 and column.cast(pa.string()).to_pylist()[997] == "p"


@pytest.mark.parametrize("shape", [[4], [2, 3], [0]])
def test_all_null_values_on_both_paths(shape: list[int]) -> None:
    n = math.prod(shape)
    raw = orjson.dumps(_doc(shape, [None] * n, status=dict.fromkeys(map(str, range(n)), "..")))
    split = _split_values(raw)
    assert split is not None and len(split[1]) == n and np.isnan(split[1]).all()  # the fast path took it
    for table in (decode_jsonstat2(raw), decode_jsonstat2(orjson.loads(raw))):
        assert table.num_rows == n and table.column("value").null_count == n
        assert table.schema.field("value").type == pa.float64()
        assert table.column("status").cast(pa.string()).to_pylist() == [".."] * n


@pytest.mark.parametrize("body", [b"[1,\n2, 3 ,null]", b"[1,\t2,\r\n3,null]", b"[ 1,2,3,null ]"])
def test_whitespace_in_the_value_list_gives_orjsons_answer(body: bytes) -> None:
    raw = orjson.dumps(_doc([4], [0, 0, 0, 0])).replace(b"[0,0,0,0]", body)
    assert decode_jsonstat2(raw).column("value").to_pylist() == [1.0, 2.0, 3.0, None]


@pytest.mark.parametrize("body", [b"[1,\n,2,3]", b"[,1,2,3]", b"[1,2 3,4]", b"[1,nul,3,4]", b"[1,\r\n,2,3]"])
def test_empty_or_broken_items_are_refused_not_skipped(body: bytes) -> None:
    raw = orjson.dumps(_doc([4], [0, 0, 0, 0])).replace(b"[0,0,0,0]", body)
    assert _split_values(raw) is None  # the shortcut declines; orjson then refuses the document
    with pytest.raises(ResponseError):
        parse_cube(raw)
