"""Render a ``tmux capture-pane -p -e`` capture (text with ANSI SGR codes) as a PNG.

    python docs/img/ansi_to_png.py capture.txt docs/img/switchyard-top.png

Needs Pillow and the DejaVu Sans Mono fonts (Debian: fonts-dejavu-core). Understands what
``switchyard top`` prints: bold, dim, red, and resets.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = Path("/usr/share/fonts/truetype/dejavu")
SIZE = 15
BG, FG, BOLD_FG, DIM_FG, RED = "#1d1f21", "#c5c8c6", "#ffffff", "#7f8487", "#ef5f5f"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def main(source: str, target: str) -> None:
    regular = ImageFont.truetype(str(FONTS / "DejaVuSansMono.ttf"), SIZE)
    bold = ImageFont.truetype(str(FONTS / "DejaVuSansMono-Bold.ttf"), SIZE)
    lines = Path(source).read_text().rstrip("\n").split("\n")
    cell_w, cell_h = regular.getlength("M"), int(SIZE * 1.35)
    width = max(len(SGR.sub("", line)) for line in lines)
    pad = 14
    image = Image.new("RGB", (int(cell_w * width) + 2 * pad, cell_h * len(lines) + 2 * pad), BG)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        x, y = pad, pad + row * cell_h
        state = {"bold": False, "dim": False, "red": False}
        pos = 0
        for match in [*SGR.finditer(line), None]:
            end = match.start() if match else len(line)
            text = line[pos:end]
            if text:
                color = (
                    RED
                    if state["red"]
                    else DIM_FG
                    if state["dim"]
                    else (BOLD_FG if state["bold"] else FG)
                )
                draw.text((x, y), text, font=bold if state["bold"] else regular, fill=color)
                x += cell_w * len(text)
            if match is None:
                break
            for code in (match.group(1) or "0").split(";"):
                if code in ("", "0"):
                    state = {"bold": False, "dim": False, "red": False}
                elif code == "1":
                    state["bold"] = True
                elif code == "2":
                    state["dim"] = True
                elif code == "31":
                    state["red"] = True
                elif code == "39":
                    state["red"] = False
            pos = match.end()
    image.save(target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
