"""Clean text and titles from HTML, text, Markdown and PDF files (hnm_db.sources.extract)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.corpus import article_html, write_pdf

from hnm_db.errors import InputError, SourceUnavailable
from hnm_db.sources.extract import clean_text, decode_utf8, extract_file, extract_html, html_title


def test_html_extraction_drops_scripts_navigation_and_footer():
    found = extract_html(article_html("stars").encode())
    assert "Paragraph 0 explains how stars form" in found.text
    assert "Paragraph 2" in found.text
    for boilerplate in ("trackingPixel", "Home page link", "About us link", "Copyright footer", "color: red"):
        assert boilerplate not in found.text


def test_html_title_prefers_title_tag_then_first_heading():
    assert (
        html_title("<html><head><title> A   page </title></head><body><h1>H</h1></body></html>") == "A page"
    )
    assert html_title("<html><body><h1>Only <b>a</b> heading</h1><p>x</p></body></html>") == "Only a heading"
    assert html_title("<html><body><p>no title</p></body></html>") is None


def test_html_file_without_title_falls_back_to_file_name(tmp_path: Path):
    page = tmp_path / "notes-2024.html"
    page.write_text("<html><body><p>Plain paragraph about telescopes and their mirrors.</p></body></html>")
    found = extract_file(page)
    assert found.title == "notes-2024"
    assert "telescopes" in found.text


def test_markdown_title_is_first_heading_and_text_keeps_line_breaks(tmp_path: Path):
    md = tmp_path / "guide.md"
    md.write_text("Intro line\n\n## Baking bread\n\nMix flour\nand water.\n", encoding="utf-8")
    found = extract_file(md)
    assert found.title == "Baking bread"
    assert found.text == "Intro line\n\n## Baking bread\n\nMix flour\nand water."


def test_text_file_is_nfc_stripped_and_titled_by_file_name(tmp_path: Path):
    txt = tmp_path / "cafe.txt"
    txt.write_bytes("  cafe\u0301 au lait\r\nsecond line  \n\n".encode())
    found = extract_file(txt)
    assert found.title == "cafe"
    assert found.text == "caf\u00e9 au lait\nsecond line"


def test_pdf_text_and_title_come_from_the_pdf(tmp_path: Path):
    found = extract_file(write_pdf(tmp_path / "paper.pdf", "Hello PDF world", title="A PDF Title"))
    assert found.title == "A PDF Title"
    assert "Hello PDF world" in found.text
    untitled = extract_file(write_pdf(tmp_path / "untitled.pdf", "Some text"))
    assert untitled.title == "untitled"


def test_corrupt_pdf_is_an_input_error_naming_the_file(tmp_path: Path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"this is not a pdf at all")
    with pytest.raises(InputError, match="broken.pdf.*not a readable PDF"):
        extract_file(bad)


def test_utf8_byte_order_mark_is_dropped():
    assert decode_utf8("\ufeffhello".encode(), "x.txt") == "hello"


def test_invalid_utf8_names_file_line_and_byte_offset():
    data = b"line one\nline two \xff here\n"
    with pytest.raises(InputError) as info:
        decode_utf8(data, "notes.txt")
    assert str(info.value) == "notes.txt line 2: invalid UTF-8 at byte offset 18 (byte 0xff)"


def test_missing_file_is_source_unavailable(tmp_path: Path):
    with pytest.raises(SourceUnavailable, match="no such file"):
        extract_file(tmp_path / "absent.txt")


def test_clean_text_unifies_line_endings_and_strips():
    assert clean_text("  a\r\nb\rc \n") == "a\nb\nc"
