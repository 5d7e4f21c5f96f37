"""A case's trail as the page shows it: repeated detections folded into one line; pure.

The detector writes a row each time it flags a unit again (``alert.reflagged``) or attaches a new alert
to an open case (``case.realerted``). Ten such rows in a row would bury the people's steps, so a run of
them becomes one line: the run's first row, saying how many it stands for and when the last was
("flagged again 10 times, last 05-28"). The audit log itself keeps every row.
"""

from __future__ import annotations

from collections.abc import Sequence

from anju.hub.cases.schemas import AuditEntry

REPEATED = frozenset({"alert.reflagged", "case.realerted"})


def fold_repeats(trail: Sequence[AuditEntry]) -> list[AuditEntry]:
    """The trail with each run of consecutive repeated-detection rows of one action folded into its
    first row, whose ``detail`` gains ``repeats`` (rows in the run) and ``last`` (the last row's time);
    a lone row stays as it is."""
    out: list[AuditEntry] = []
    run: list[AuditEntry] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first, last = run[0], run[-1]
            out.append(first.model_copy(update={"detail": {**first.detail, "repeats": len(run),
                                                           "last": last.ts.isoformat()}}))
        run.clear()

    for entry in trail:
        if entry.action in REPEATED and (not run or run[0].action == entry.action):
            run.append(entry)
            continue
        flush()
        if entry.action in REPEATED:
            run.append(entry)
        else:
            out.append(entry)
    flush()
    return out
