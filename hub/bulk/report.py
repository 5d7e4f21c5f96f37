"""What an import tells its operator: a progress bar on stderr and the reject file of refused lines."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import IO


class Progress:
    """A one-line progress bar on stderr (bytes of a file), redrawn at most a few times a second."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.monotonic()
        self._last = 0.0

    def advance(self, n: int, rows: int) -> None:
        """Record ``n`` more bytes done, ``rows`` lines so far; redraw if due."""
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.25 or self.done >= self.total:
            self._last = now
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * share)
            rate = rows / max(now - self.t0, 1e-9)
            self.stream.write(f"\r{self.label:<9} [{bar:<30}] {share:6.1%} {rows:>11,} rows {rate:>9,.0f}/s")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        self.stream.write("\n")
        self.stream.flush()


class RejectWriter:
    """The reject file: ``file,line,reason,raw`` as CSV, one row per refused line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(["file", "line", "reason", "raw"])
        self.count = 0

    def write(self, file: str, line: int, reason: str, raw: str) -> None:
        """Record one refused line."""
        self._csv.writerow([file, line, reason, raw])
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._fh.close()

    def __enter__(self) -> RejectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unescape_copy_text(line: str) -> tuple[str, str, str]:
    """Split one line of COPY text output into its three columns, undoing COPY's backslash escapes."""
    cols = line.split("\t")
    out: list[str] = []
    for col in cols:
        if col == "\\N":
            out.append("")
            continue
        out.append(col.replace("\\t", "\t").replace("\\r", "\r").replace("\\n", "\n").replace("\\\\", "\\"))
    n, reason, raw = [*out, "", "", ""][:3]
    return n, reason, raw

