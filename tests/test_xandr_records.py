"""xandr-bss records: the member's line format, row joining, 1800-segment lines, validation."""

from __future__ import annotations

from typing import Any

import pytest

from bulkctl.errors import UsageError
from bulkctl.records import RawItem, Record, Rejection, ShapeOptions
from bulkctl.targets import build
from bulkctl.targets.xandr_bss import XandrTarget
from bulkctl.targets.xandr_format import MAX_SEGMENTS, LineFormat


def target(**options: Any) -> XandrTarget:
    built = build("xandr-bss", options).target
    assert isinstance(built, XandrTarget)
    return built


def items(*rows: Any, source: str = "in.csv") -> list[RawItem]:
    return [RawItem(source, n, None, row) for n, row in enumerate(rows, start=2)]


def lines(xandr: XandrTarget, raw: list[RawItem]) -> tuple[list[str], list[Rejection]]:
    """Encoded lines and rejections, as the pipeline would see them."""
    out: list[str] = []
    rejected: list[Rejection] = []
    for shaped in xandr.records(raw, ShapeOptions()):
        if isinstance(shaped, Record):
            problems, line = xandr.check(shaped)
            assert not problems
            assert line is not None
            out.append(line.decode("latin-1"))
        else:
            rejected.append(shaped)
    return out, rejected


# -- the format ----------------------------------------------------------------------------------


def test_default_format_writes_seed_003s_example() -> None:
    """SEG_ID,EXPIRATION with ,;: gives `uid,10000:1440;10001:1440`."""
    fmt = LineFormat.parse(None, None)
    line = fmt.encode("12345678900987654321", [(10000, 1440), (10001, 1440)])
    assert line == "12345678900987654321,10000:1440;10001:1440"
    assert fmt.decode(line) == ("12345678900987654321", [(10000, 1440), (10001, 1440)])


def test_configured_fields_and_separators_shape_the_line() -> None:
    """--seg-fields and --separators decide the order and the characters."""
    fmt = LineFormat.parse("seg_code,value,timestamp", "\t,=")
    assert fmt.encode("u1", [("autos", 5, 1700000000)]) == "u1\tautos=5=1700000000"


@pytest.mark.parametrize(
    ("separators", "message"),
    [
        (",;", "three characters"),
        (",;-", "cannot be a separator"),
        (",|:", "cannot be a separator"),
        (",;a", "cannot be a separator"),
        (",;,", "SEP3"),
        (",::", "SEP3"),
    ],
)
def test_separators_follow_xandrs_rules(separators: str, message: str) -> None:
    """Single characters, none of [](){}$\\/|?*+- nor letters, SEP3 distinct from SEP1/SEP2."""
    with pytest.raises(UsageError, match=message):
        LineFormat.parse(None, separators)


def test_sep1_may_equal_sep2() -> None:
    """`uid,seg,seg` (SEP1 = SEP2) is a valid configuration."""
    fmt = LineFormat.parse("SEG_ID", ",,:")
    assert fmt.decode("7,1,2") == ("7", [(1,), (2,)])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("SEG_ID,SEG_CODE", "exactly one of SEG_ID and SEG_CODE"),
        ("EXPIRATION", "exactly one of SEG_ID and SEG_CODE"),
        ("SEG_ID,COLOUR", "unknown field 'COLOUR'"),
        ("SEG_ID,VALUE,VALUE", "named twice"),
    ],
)
def test_seg_fields_are_checked(fields: str, message: str) -> None:
    """--seg-fields names known fields, once each, with one segment identifier."""
    with pytest.raises(UsageError, match=message):
        target(seg_fields=fields)


def test_decode_reports_an_illegal_number_of_fields() -> None:
    """A SEG block with too few fields is invalid format, as Xandr words it."""
    result = LineFormat().decode("5,10000")
    assert isinstance(result, str)
    assert "illegal number of fields" in result


# -- records -------------------------------------------------------------------------------------


def test_adjacent_rows_of_one_uid_become_one_line() -> None:
    """Rows of one uid in a row join; a uid seen again later starts a new line."""
    raw = items(
        {"uid": "1", "seg_id": "10", "expiration": "60"},
        {"uid": "1", "seg_id": "11", "expiration": "60"},
        {"uid": "2", "seg_id": "10", "expiration": "0"},
        {"uid": "1", "seg_id": "12", "expiration": "-1"},
    )
    out, rejected = lines(target(), raw)
    assert out == ["1,10:60;11:60", "2,10:0", "1,12:-1"]
    assert rejected == []


def test_a_joined_line_counts_every_row_it_holds() -> None:
    """A joined record stands for its rows (what `records` in the summary counts)."""
    raw = items(
        {"uid": "1", "seg_id": 1, "expiration": 1}, {"uid": "1", "seg_id": 2, "expiration": 1}
    )
    (record,) = target().records(raw, ShapeOptions())
    assert isinstance(record, Record)
    assert (record.items, record.line) == (2, 2)


def test_more_than_1800_segments_are_split_into_lines() -> None:
    """1800 segments a line at most, for joined rows and for one NDJSON user alike."""
    many = [{"id": n, "expiration": 5} for n in range(1, 4002)]
    out, _ = lines(target(), items({"uid": "9", "segments": many}))
    assert [line.count(";") + 1 for line in out] == [MAX_SEGMENTS, MAX_SEGMENTS, 401]
    rows = items(*({"uid": "9", "seg_id": n, "expiration": 5} for n in range(1, 1802)))
    out, _ = lines(target(), rows)
    assert [line.count(";") + 1 for line in out] == [MAX_SEGMENTS, 1]


def test_a_user_object_takes_the_one_element_seed_shape() -> None:
    """NDJSON users: `{"uid", "segments": [{"id", "expiration", "value", "timestamp"}]}`."""
    user = {
        "uid": 123,
        "segments": [{"id": 10000, "expiration": 1440, "value": 0, "timestamp": 1700000000}],
    }
    out, rejected = lines(target(seg_fields="SEG_ID,EXPIRATION,VALUE,TIMESTAMP"), items(user))
    assert out == ["123,10000:1440:0:1700000000"]
    assert rejected == []


def test_value_defaults_to_zero_when_the_format_has_it() -> None:
    """Xandr's advice: a member configured with VALUE gets 0 where there is none."""
    out, _ = lines(target(seg_fields="SEG_ID,VALUE"), items({"uid": "1", "seg_id": 4}))
    assert out == ["1,4:0"]


@pytest.mark.parametrize(
    ("row", "field", "rule"),
    [
        ({"seg_id": 1, "expiration": 1}, "uid", "uid.missing"),
        ({"uid": "", "seg_id": 1, "expiration": 1}, "uid", "uid.missing"),
        ({"uid": "zé€", "seg_id": 1, "expiration": 1}, "uid", "text.latin1"),
        ({"uid": "a,b", "seg_id": 1, "expiration": 1}, "uid", "text.separator"),
        ({"uid": "1", "seg_id": "x", "expiration": 1}, "seg_id", "segment.seg_id"),
        ({"uid": "1", "seg_id": 0, "expiration": 1}, "seg_id", "segment.seg_id"),
        ({"uid": "1", "seg_id": 1.5, "expiration": 1}, "seg_id", "segment.seg_id"),
        ({"uid": "1", "seg_id": 1, "expiration": -2}, "expiration", "segment.expiration"),
        ({"uid": "1", "seg_id": 1}, "expiration", "segment.missing"),
        ({"uid": "1", "seg_id": 1, "expiration": 1, "value": 2}, "value", "field_not_configured"),
        ({"uid": "1", "seg_id": 1, "expiration": 1, "colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_row_problems_name_the_field_and_the_row(
    row: dict[str, Any], field: str, rule: str
) -> None:
    """Each invalid row is rejected on its own line, with the field and a rule name."""
    good = {"uid": "7", "seg_id": 1, "expiration": 1}
    out, rejected = lines(target(), items(good, row))
    assert out == ["7,1:1"]
    (rejection,) = rejected
    assert rejection.line == 3
    first = rejection.problems[0]
    assert (first.field, first.rule.endswith(rule)) == (field, True)


@pytest.mark.parametrize(
    ("fields", "segment", "rule"),
    [
        ("SEG_ID,VALUE", {"id": 1, "value": 2_147_483_648}, "segment.value"),
        ("SEG_ID,TIMESTAMP", {"id": 1, "timestamp": 1_700_000_000_000}, "segment.timestamp"),
        ("SEG_ID,TIMESTAMP", {"id": 1, "timestamp": -5}, "segment.timestamp"),
        ("SEG_CODE", {"code": 12}, "segment.seg_code"),
        ("SEG_CODE", {"code": "caf\u00e9\u2122"}, "segment.seg_code"),
    ],
)
def test_segment_values_follow_the_rules(fields: str, segment: dict[str, Any], rule: str) -> None:
    """VALUE ≤ 2147483647, TIMESTAMP in unix seconds, SEG_CODE a Latin-1 string."""
    _, (rejection,) = lines(target(seg_fields=fields), items({"uid": "1", "segments": [segment]}))
    assert rejection.problems[0].rule == rule
    assert rejection.problems[0].field is not None
    assert rejection.problems[0].field.startswith("segments[0].")


def test_cells_stay_text_so_a_uid_keeps_its_zeros() -> None:
    """CSV inference is off for xandr-bss: uid 007 stays 007, a code stays a code."""
    from bulkctl.read.sources import ReadOptions

    read = target().prepare_read(ReadOptions())
    assert read.infer is False
    assert read.id_field == "uid"
