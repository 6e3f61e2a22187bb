"""What `marketdata coverage` shows of a `CoverageReport`: summary lines and a PNG picture.

`format_summary` gives the lines (totals per state, then the symbols, all when few, else the
ones with gaps); `draw_png` the picture (rows are symbols, columns are days; weekends and
holidays of a stock row are drawn as "no session"). Pillow draws it: a small, long-maintained
imaging library with wheels everywhere, imported only when a picture is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from marketdata_pipeline.coverage import STATUSES, Cell, CoverageReport

#: Summary lines: every symbol up to this many; beyond, only the incomplete ones (this many).
MAX_SYMBOL_LINES = 20

#: Picture colours (RGB): distinct for colour-blind readers too (blue/orange rather than
#: green/red for the two main states).
COLOURS: dict[Cell, tuple[int, int, int]] = {
    Cell.STORED: (44, 123, 182),
    Cell.MISSING: (253, 174, 97),
    Cell.QUARANTINED: (171, 94, 203),
    Cell.FAILED: (215, 25, 28),
    Cell.NO_SESSION: (235, 235, 235),
}
BACKGROUND = (255, 255, 255)
TEXT = (30, 30, 30)


def format_summary(report: CoverageReport) -> list[str]:
    """Summary lines: totals per state, then per-symbol lines (all when few, else the gaps)."""
    counts = report.counts()
    total = sum(counts.values())
    lines = [
        f"coverage {report.start}..{report.end}: {len(report.rows)} symbols, "
        f"{total} sessions (stocks: NYSE sessions; crypto: every UTC day)",
        "  " + ", ".join(f"{status.value} {counts.get(status, 0)}" for status in STATUSES),
    ]
    if not report.rows:
        lines.append("  no tracked symbols: add some with `marketdata symbols add`")
    incomplete = [r for r in report.rows if set(r.counts()) - {Cell.STORED}]
    shown = report.rows if len(report.rows) <= MAX_SYMBOL_LINES else incomplete
    if len(report.rows) > MAX_SYMBOL_LINES:
        lines.append(
            f"  {len(report.rows) - len(incomplete)} symbols complete, "
            f"{len(incomplete)} with gaps" + (":" if incomplete else "")
        )
    width = max((len(r.label) for r in shown), default=0)
    for row in shown[:MAX_SYMBOL_LINES]:
        c = row.counts()
        parts = [f"{s.value} {c[s]}" for s in STATUSES if c.get(s)]
        error = f"  ({row.last_error[:80]})" if c.get(Cell.FAILED) and row.last_error else ""
        lines.append(f"  {row.label:<{width}}  {', '.join(parts) or 'no sessions'}{error}")
    if len(shown) > MAX_SYMBOL_LINES:
        lines.append(f"  ... and {len(shown) - MAX_SYMBOL_LINES} more")
    if report.out is not None:
        lines.append(f"picture: {report.out}")
    return lines


@dataclass(frozen=True)
class PictureLayout:
    """Where the grid is in the PNG: cell (row, column) covers `cell_box(row, column)`."""

    left: int
    top: int
    cell_width: int
    cell_height: int

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, inclusive."""
        x0 = self.left + column * self.cell_width
        y0 = self.top + row * self.cell_height
        return x0, y0, x0 + self.cell_width - 1, y0 + self.cell_height - 1

    def cell_centre(self, row: int, column: int) -> tuple[int, int]:
        """A pixel inside the cell."""
        x0, y0, x1, y1 = self.cell_box(row, column)
        return (x0 + x1) // 2, (y0 + y1) // 2


#: The grid's size in pixels is kept near these (cells shrink to 1 pixel for long ranges).
MAX_GRID_WIDTH = 1800
MAX_GRID_HEIGHT = 2400


#: Pixels between words: the default font's space is too narrow to read ("nosession").
WORD_GAP = 5


def _words(draw, xy: tuple[float, float], text: str, font) -> float:
    """Draw `text` word by word with a readable gap; return the x after it."""
    x, y = xy
    for word in text.split(" "):
        draw.text((x, y), word, fill=TEXT, font=font)
        x += font.getlength(word) + WORD_GAP
    return x - WORD_GAP


def draw_png(report: CoverageReport, out: Path) -> PictureLayout:
    """Draw the report as a PNG at `out` and return where its cells are.

    Rows are labelled with the symbol and its class (as `marketdata symbols list` shows them),
    columns get date ticks below the grid, and a legend names each colour.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    n_days, n_rows = max(len(report.days), 1), max(len(report.rows), 1)
    cell_w = max(1, min(14, MAX_GRID_WIDTH // n_days))
    cell_h = max(1, min(14, MAX_GRID_HEIGHT // n_rows))
    labels = cell_h >= 10
    symbol_w = max((font.getlength(r.symbol) for r in report.rows), default=30) + 8
    class_w = max((font.getlength(r.asset_class.value) for r in report.rows), default=30)
    label_w = int(4 + symbol_w + class_w + 10) if labels else 10
    header, ticks_h, legend_h = 24, 18, 24
    layout = PictureLayout(left=label_w, top=header, cell_width=cell_w, cell_height=cell_h)
    tick_w = int(font.getlength("2024-01-01")) + 12
    width = max(label_w + n_days * cell_w + tick_w, 600)
    grid_bottom = header + n_rows * cell_h
    height = grid_bottom + ticks_h + legend_h + 8
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _words(
        draw,
        (4, 4),
        f"{report.start} .. {report.end}   {len(report.rows)} symbols x {len(report.days)} days",
        font,
    )
    for r, row in enumerate(report.rows):
        if labels:
            _, y0, _, _ = layout.cell_box(r, 0)
            draw.text((4, y0), row.symbol, fill=TEXT, font=font)
            draw.text((4 + symbol_w, y0), row.asset_class.value, fill=TEXT, font=font)
        for c, cell in enumerate(row.cells):
            draw.rectangle(layout.cell_box(r, c), fill=COLOURS[cell])
    # A date tick every so many columns, as far apart as a date is wide.
    step = max(1, -(-tick_w // cell_w))
    for c in range(0, len(report.days), step):
        x0, _, _, _ = layout.cell_box(0, c)
        draw.line((x0, grid_bottom, x0, grid_bottom + 3), fill=TEXT)
        draw.text((x0, grid_bottom + 4), report.days[c].isoformat(), fill=TEXT, font=font)
    x, y = 4.0, grid_bottom + ticks_h + 6
    for cell in (*STATUSES, Cell.NO_SESSION):
        draw.rectangle((x, y, x + 11, y + 11), fill=COLOURS[cell], outline=TEXT)
        x = _words(draw, (x + 16, y), cell.value, font) + 18
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return layout
