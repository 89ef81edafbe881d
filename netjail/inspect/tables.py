"""Output for the flows commands: rich tables on a terminal, plain aligned text when piped.

Every value that came from a record goes through `safe_text` before it is shown, and into rich only as
`Text` (never as markup), so a host, path or header cannot drive the terminal or inject styling.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from netjail.utils.text import safe_text

Cell = str | tuple[str, str | None]  # text, or (text, rich style)
PLAIN_PAD = 40  # plain text: columns are padded to their longest value up to this width
MIN_SHRUNK = 8  # a terminal too narrow for a streamed table shrinks its wide columns down to this


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"  # "left" | "right"
    width: int | None = None  # fixed width for streamed tables (values are padded, never cut in plain text)
    max_width: int | None = None  # rich only: longer values wrap/fold
    style: str | None = None
    no_wrap: bool = False  # rich only: cut with an ellipsis rather than wrap
    optional: bool = False  # streamed, on a terminal too narrow for every column: left out first


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def _text(cell: Cell) -> tuple[str, str | None]:
    if isinstance(cell, tuple):
        return safe_text(cell[0]), cell[1]
    return safe_text(cell), None


class Output:
    """Where a command writes: `terminal` decides rich or plain; `--json` output bypasses both."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None):
        self.stream = stream or sys.stdout
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self._console: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.stream, force_terminal=self.terminal, highlight=False, soft_wrap=False
            )
        return self._console

    def line(self, text: str = "", style: str | None = None) -> None:
        """A line netjail wrote itself (may embed record values already passed through safe_text)."""
        if self.terminal:
            from rich.text import Text

            self.console.print(Text(text, style=style or ""))
        else:
            self.stream.write(text + "\n")

    def styled(self, parts: Iterable[tuple[str, str | None]]) -> None:
        """One line from pieces with their own styles (plain text ignores the styles)."""
        parts = list(parts)
        if self.terminal:
            from rich.text import Text

            text = Text()
            for piece, style in parts:
                text.append(piece, style=style or "")
            self.console.print(text)
        else:
            self.stream.write("".join(p for p, _ in parts) + "\n")

    def table(
        self, columns: Sequence[Column], rows: Iterable[Sequence[Cell]], title: str | None = None
    ) -> None:
        texts = [[_text(c) for c in row] for row in rows]
        if self.terminal:
            from rich import box
            from rich.table import Table
            from rich.text import Text

            table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", header_style="bold")
            for col in columns:
                table.add_column(
                    col.header,
                    justify=col.justify,  # type: ignore[arg-type]
                    max_width=col.max_width,
                    style=col.style,
                    no_wrap=col.no_wrap,
                    overflow="ellipsis" if col.no_wrap else "fold",
                )
            for text_row in texts:
                table.add_row(*(Text(text, style=style or "") for text, style in text_row))
            self.console.print(table)
            return
        if title:
            self.stream.write(title + "\n")
        widths = [len(c.header) for c in columns]
        for text_row in texts:
            widths = [max(w, len(text)) for w, (text, _) in zip(widths, text_row)]
        # One long value (a command line) must not pad every row: past PLAIN_PAD a value pushes its own row out.
        widths = [min(w, max(len(c.header), PLAIN_PAD)) for w, c in zip(widths, columns)]
        self.stream.write(_plain_row([c.header for c in columns], columns, widths) + "\n")
        for text_row in texts:
            self.stream.write(_plain_row([text for text, _ in text_row], columns, widths) + "\n")

    def stream_table(self, columns: Sequence[Column], batch: int = 200) -> StreamTable:
        return StreamTable(self, columns, batch)


def _plain_row(cells: Sequence[str], columns: Sequence[Column], widths: Sequence[int]) -> str:
    out = []
    last = len(cells) - 1
    for i, (text, col, width) in enumerate(zip(cells, columns, widths)):
        if col.justify == "right":
            out.append(text.rjust(width))
        else:
            out.append(text if i == last else text.ljust(width))
    return "  ".join(out).rstrip()


class StreamTable:
    """A table of any length in bounded memory, written as rows come. Columns have fixed widths: in plain text
    a longer value pushes the rest of its row out (nothing is cut); on a terminal it is cut with an ellipsis
    (the last column excepted) and the row is styled. Rows are written by batches of `batch`."""

    def __init__(self, out: Output, columns: Sequence[Column], batch: int):
        self.out, self.columns, self.batch = out, list(columns), batch
        self.widths = [max(c.width or 0, len(c.header)) for c in self.columns]
        self.keep = list(range(len(self.columns)))  # the columns shown
        if out.terminal:
            self._fit(out.console.width)
        self.pending: list[str] = []
        self._styles: dict[str, str] = {}
        self.count = 0
        self._header_done = False

    def _fit(self, room: int) -> None:
        """Shrink the columns that may wrap in rich (`max_width` set: host, path, reason) until the row fits the
        terminal, widest first, none below MIN_SHRUNK; values are then cut with an ellipsis."""
        flexible = [i for i, c in enumerate(self.columns) if c.max_width is not None]
        floors = sum(max(MIN_SHRUNK, len(self.columns[i].header)) for i in flexible)
        fixed = sum(w for i, w in enumerate(self.widths) if i not in flexible)
        if (
            fixed + floors + 2 * (len(self.widths) - 1) > room
        ):  # too narrow even shrunk: drop optional columns
            self.keep = [i for i, c in enumerate(self.columns) if not c.optional]
            self.columns = [self.columns[i] for i in self.keep]
            self.widths = [self.widths[i] for i in self.keep]
            flexible = [i for i, c in enumerate(self.columns) if c.max_width is not None]
        excess = sum(self.widths) + 2 * (len(self.widths) - 1) - room
        while excess > 0 and flexible:
            widest = max(flexible, key=lambda i: self.widths[i])
            floor = max(MIN_SHRUNK, len(self.columns[widest].header))
            if self.widths[widest] <= floor:
                break
            step = min(excess, self.widths[widest] - floor, max(1, self.widths[widest] // 4))
            self.widths[widest] -= step
            excess -= step

    def _header(self) -> None:
        self._header_done = True
        cells = [c.header for c in self.columns]
        if not self.out.terminal:
            self.out.stream.write(_plain_row(cells, self.columns, self.widths) + "\n")
            return
        width = sum(self.widths) + 2 * (len(self.widths) - 1)
        self.out.stream.write(self._styled_row([(c, "bold") for c in cells]) + "\n")
        self.out.stream.write(self._render("─" * min(width, self.out.console.width), "dim") + "\n")

    def _styled_row(self, cells: Sequence[tuple[str, str | None]]) -> str:
        """One row as terminal text: rich renders each style (cached), the row is joined as a string, so a
        hundred thousand rows cost no more than their formatting."""
        parts = []
        last = len(cells) - 1
        for i, ((text, style), col, width) in enumerate(zip(cells, self.columns, self.widths)):
            if (i != last or self.widths[i] < (col.width or 0)) and len(text) > width:
                text = text[: width - 1] + "…"  # the last column too, once it was shrunk to fit
            if i != last:
                text = text.rjust(width) if col.justify == "right" else text.ljust(width)
            style = style or col.style
            parts.append(self._render(text, style) if style else text)
        return "  ".join(parts)

    def _render(self, text: str, style: str) -> str:
        rendered = self._styles.get(style)
        if rendered is None:
            from rich.style import Style

            system = getattr(self.out.console, "_color_system", None)  # None: NO_COLOR or no colour support
            rendered = self._styles[style] = Style.parse(style).render("\0", color_system=system)
        return rendered.replace("\0", text, 1)

    def add(self, row: Sequence[Cell]) -> None:
        if not self._header_done:
            self._header()
        self.count += 1
        cells = [_text(c) for c in row]
        if len(self.keep) != len(cells):
            cells = [cells[i] for i in self.keep]
        if self.out.terminal:
            self.pending.append(self._styled_row(cells))
        else:
            self.pending.append(_plain_row([t for t, _ in cells], self.columns, self.widths))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.out.stream.write("\n".join(self.pending) + "\n")
        self.pending.clear()

    def close(self) -> None:
        self.flush()
