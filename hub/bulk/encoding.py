"""Text encodings of import files: UTF-8 (with or without a BOM) and GB18030/GBK, checked before import.

Spreadsheets in China save CSV as GBK (or its superset GB18030) unless told otherwise. Everything after
this module reads UTF-8 bytes, so a file in another encoding is decoded and re-encoded on the way in.
Pure: no database.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import IO

from anju.hub.bulk.parse import BulkImportError

ENCODINGS = ("utf-8", "gb18030", "gbk")  # what ``anju import --encoding`` accepts
_CHECK_BYTES = 8 << 20


def check_encoding(path: Path, encoding: str) -> None:
    """Refuse ``path`` (BulkImportError) unless it is all text in ``encoding``; name the first bad line."""
    if encoding not in ENCODINGS:
        raise BulkImportError(f"{path}: encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line, offset = 1, 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHECK_BYTES)
            pending = decoder.getstate()[0]  # the start of a character cut by the last chunk's end
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                data = pending + chunk
                bad_line = line + data[:err.start].count(b"\n")
                raise BulkImportError(
                    f"{path}: not {encoding} text: line {bad_line} (byte "
                    f"{offset - len(pending) + err.start}) holds {data[err.start:err.start + 4]!r}; save the "
                    f"file as UTF-8, or give --encoding gb18030 for a GBK/GB18030 (Chinese Excel) export"
                ) from err
            if not chunk:
                return
            line += chunk.count(b"\n")
            offset += len(chunk)


def utf8_reader(fh: IO[bytes], encoding: str) -> IO[bytes]:
    """``fh`` read as UTF-8 bytes: itself for UTF-8, else decoded from ``encoding`` and re-encoded."""
    if encoding == "utf-8":
        return fh
    return io.BufferedReader(_Utf8Recoder(fh, encoding), buffer_size=1 << 20)


class _Utf8Recoder(io.RawIOBase):
    """A raw stream of the UTF-8 form of a binary file in another encoding (already checked)."""

    def __init__(self, source: IO[bytes], encoding: str) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            chunk = self._source.read(1 << 20)
            self._done = not chunk
            self._pending = memoryview(self._decoder.decode(chunk, final=self._done).encode("utf-8"))
        out = memoryview(buffer).cast("B")
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
