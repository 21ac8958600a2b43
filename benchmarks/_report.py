"""Shared helpers of the benchmark scripts: machine facts, number formatting, and the
marked sections of benchmarks/README.md that each script writes and re-writes."""

from __future__ import annotations

import os
import platform
from pathlib import Path

TITLE = """# priorsep benchmarks

Timing scripts for `priorsep`. Each script writes its own section of this file between
HTML-comment markers and can be re-run to replace it; numbers are only comparable when
they come from the same machine, load and command, which each section states.
"""


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    """The 1/5/15-minute load averages, two decimals each."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def fmt_seconds(x: float, small: str = ".3f") -> str:
    """Three significant-looking digits for a time in seconds; ``small`` formats x < 1."""
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return format(x, small)


def write_section(path: Path, section: str, start: str, end: str) -> None:
    """Replace the text between the ``start`` and ``end`` markers of ``path`` with
    ``section`` (which carries the markers), or append it; create the file if needed."""
    if path.exists():
        text = path.read_text()
        if start in text and end in text and text.index(start) < text.index(end):
            head, rest = text.split(start, 1)
            tail = rest.split(end, 1)[1]
            text = head + section.rstrip("\n") + tail
        else:
            text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = TITLE + "\n" + section
    path.write_text(text)


def command_line() -> str:
    """This script's command line, with the interpreter relative to the working folder
    when it is below it (``.venv/bin/python benchmarks/x.py --opt``)."""
    import shlex
    import sys

    exe = os.path.relpath(sys.executable)
    return shlex.join([exe if not exe.startswith("..") else sys.executable, *sys.argv])


def publish(path: Path, lines: list[str], start: str, end: str) -> None:
    """Write ``lines`` (the section's body, without the markers) as the marked section of
    ``path`` and print it."""
    section = "\n".join([start, *lines, end]) + "\n"
    write_section(path, section, start, end)
    print(section)


def table_section(title: str, what: str, head: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A section's lines: ``## title``, the command line with date, CPU and load, ``what``
    the table shows, then the table (``left`` text columns, the rest numbers)."""
    import datetime

    return [f"## {title}", "",
            f"`{command_line()}` ({datetime.date.today().isoformat()}; {cpu_model()}; load {loadavg()}). {what}", "",
            "| " + " | ".join(head) + " |", "|" + "---|" * left + "---:|" * (len(head) - left),
            *("| " + " | ".join(r) + " |" for r in rows)]

