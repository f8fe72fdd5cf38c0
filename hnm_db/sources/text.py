"""Text normalisation and the content hash that decides what is new.

The hash is the only key that links texts to vectors (embeddings, ensemble vectors, clusters, scores),
so it must not change between versions: NFC, whitespace runs collapsed to one space, stripped,
then blake2b with a 16-byte digest, hex encoded.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFC, collapse whitespace, strip: the form that is hashed (stored text keeps its line breaks)."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def content_hash(text: str) -> str:
    """Hash of the normalised text; identical texts share one hash, hence one embedding."""
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).hexdigest()
