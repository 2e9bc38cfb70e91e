"""RESULTS.md sections owned by one benchmark: replaced in place, appended once, everything else kept."""

from __future__ import annotations

from benchmarks.sections import extract_section, write_section

BEGIN, END = "<!-- x:begin -->", "<!-- x:end -->"


def test_a_section_is_appended_once_then_replaced_in_place(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nintro\n\n<!-- y:begin -->\nother\n<!-- y:end -->\n")
    write_section(path, f"{BEGIN}\nfirst\n{END}", BEGIN, END)
    assert path.read_text().endswith(f"{BEGIN}\nfirst\n{END}\n")
    write_section(path, f"{BEGIN}\nsecond\n{END}", BEGIN, END)
    text = path.read_text()
    assert text.count(BEGIN) == 1 and "first" not in text and "second" in text
    assert text.startswith("# Results\n\nintro\n\n<!-- y:begin -->\nother\n<!-- y:end -->")
    assert extract_section(text, BEGIN, END) == f"{BEGIN}\nsecond\n{END}"


def test_no_section_or_markers_out_of_order_read_as_empty():
    assert extract_section("nothing here", BEGIN, END) == ""
    assert extract_section(f"{END} then {BEGIN}", BEGIN, END) == ""
