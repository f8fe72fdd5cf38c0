"""Clean text and a title from the files and pages that ``ingest files`` and ``ingest urls`` read.

HTML goes through trafilatura (a real boilerplate remover: scripts, styles, navigation, headers and
footers are dropped); .txt and .md are kept as written; .pdf is read page by page with pypdf.
Every extractor returns the same small :class:`Extracted`, so ingest treats all formats alike.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hnm_db.errors import InputError, SourceUnavailable

T = TypeVar("T")

#: Suffixes ``ingest files`` picks up (lower-cased).
SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")


@dataclass(frozen=True)
class Extracted:
    """The clean text of one file or page and its title (None when it has none)."""

    title: str | None
    text: str


def clean_text(text: str) -> str:
    """NFC, unified line endings, stripped: stored text keeps its line breaks (chunkers split on them)."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def decode_utf8(data: bytes, path: str) -> str:
    """Decode strictly; invalid bytes are an error naming the file, line and byte offset.

    A silent replacement character would change the content hash and hide a broken export upstream.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"invalid UTF-8 at byte offset {exc.start} (byte 0x{data[exc.start]:02x})", path=path, line=line
        ) from None


def read_bytes(path: Path) -> bytes:
    """The bytes of a file, or SourceUnavailable naming it (missing, a folder, no permission)."""
    return _readable(path, path.read_bytes)


def check_readable(path: Path) -> None:
    """Fail as :func:`read_bytes` would, without reading the file (for readers that open it themselves)."""
    _readable(path, lambda: path.open("rb").close())


def _readable(path: Path, action: Callable[[], T]) -> T:
    try:
        return action()
    except FileNotFoundError:
        raise SourceUnavailable(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceUnavailable(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise SourceUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from None


def one_line(text: str | None) -> str | None:
    """A title-like value on one line, NFC, inner whitespace collapsed; None when empty."""
    if not text:
        return None
    text = _SPACES.sub(" ", " ".join(unicodedata.normalize("NFC", text).split())).strip()
    return text or None


def html_title(html: bytes | str) -> str | None:
    """<title>, else the first <h1>/<h2>, else None."""
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None
    title = one_line(tree.findtext(".//title"))
    if title:
        return title
    for tag in ("h1", "h2"):
        title = one_line(tree.xpath(f"string((//{tag})[1])"))
        if title:
            return title
    return None


def extract_html(html: bytes | str, *, url: str | None = None) -> Extracted:
    """Main text of a page with boilerplate removed.

    ``favor_precision`` drops navigation even on short pages, where trafilatura's recall-oriented
    fallback would keep menu links; only when it finds nothing do we fall back to the default mode.
    Bytes are decoded by trafilatura from the page's declared charset.
    """
    import trafilatura

    if not html.strip():
        return Extracted(None, "")
    options = dict(url=url, include_comments=False, include_tables=True, output_format="txt")
    text = trafilatura.extract(html, favor_precision=True, **options)
    if not text:
        text = trafilatura.extract(html, **options)
    return Extracted(html_title(html), clean_text(text or ""))


def extract_plain(data: bytes, path: Path) -> Extracted:
    """A .txt file: text as written, no title of its own (the caller uses the file name)."""
    return Extracted(None, clean_text(decode_utf8(data, str(path))))


def extract_markdown(data: bytes, path: Path) -> Extracted:
    """A .md file: text as written (markup is harmless to embedders), title from the first heading."""
    text = clean_text(decode_utf8(data, str(path)))
    m = _MD_HEADING.search(text)
    return Extracted(one_line(m.group(1)) if m else None, text)


class _Collect(logging.Handler):
    """Keeps a library's log warnings and Python warnings, so they end up in our error, not on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.logged: list[str] = []
        self.warned: list[warnings.WarningMessage] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.logged.append(record.getMessage())

    def said(self) -> str:
        """What the library said, once each, in order."""
        return "; ".join(
            dict.fromkeys(m for m in [*self.logged, *(str(w.message) for w in self.warned)] if m)
        )


@contextmanager
def _library_log(name: str) -> Iterator[_Collect]:
    """Collect logger ``name``'s warnings (and Python warnings) while the block runs, printing none:
    a library's own lines would otherwise land above hnm-db's one-line error."""
    logger = logging.getLogger(name)
    handler, propagate = _Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handler.warned = caught if caught is not None else []
            yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def extract_pdf(data: bytes, path: Path) -> Extracted:
    """Text of every page (pages separated by a blank line), title from the PDF's metadata.

    pypdf's warnings (``EOF marker not found``, ...) are not printed: a PDF that cannot be read is an
    error whose message carries them; for one that can, they are dropped."""

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    with _library_log("pypdf") as log:
        try:
            reader = PdfReader(io.BytesIO(data))
            pages = [page.extract_text() or "" for page in reader.pages]
            meta_title = reader.metadata.title if reader.metadata else None
        except (PdfReadError, ValueError, KeyError, TypeError) as exc:
            said = log.said()
            raise InputError(
                f"not a readable PDF: {exc}" + (f" (pypdf: {said})" if said else ""), path=str(path)
            ) from None
    text = "\n\n".join(clean_text(p) for p in pages if p.strip())
    return Extracted(one_line(meta_title), text)


def extract_file(path: Path) -> Extracted:
    """Dispatch on the suffix; the title falls back to the file name (without suffix)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(SUFFIXES)}",
            path=str(path),
        )
    data = read_bytes(path)
    if suffix in (".html", ".htm"):
        found = extract_html(data)
    elif suffix == ".pdf":
        found = extract_pdf(data, path)
    elif suffix == ".md":
        found = extract_markdown(data, path)
    else:
        found = extract_plain(data, path)
    return Extracted(found.title or path.stem, found.text)
