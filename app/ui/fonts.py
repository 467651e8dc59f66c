"""Self-hosting the NHS.UK frontend's fonts: no page waits on a host outside the trust.

The compiled NHS.UK stylesheet declares the Frutiger web font with `@font-face` rules that
load it from https://assets.nhs.uk. Trust networks often block or slow that host (pages
waited 1-5 s), and the content security policy should name no outside host. When
`scripts/setup.sh` copies the stylesheet it runs this module over it:

- a font file the npm package ships (under `assets/fonts/`) is served by Navigator instead,
  at `/static/nhsuk/assets/fonts/<file>`;
- a font it does not ship (nhsuk-frontend 10 ships none: Frutiger is licensed) is dropped
  from the rule; a rule left with no source is removed, so the browser uses the stylesheet's
  own fallback stack (`Frutiger W01, arial, sans-serif`): a locally installed Frutiger, else
  Arial, else the system sans-serif.

Idempotent: running it again over a rewritten stylesheet changes nothing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")
SOURCE = re.compile(r"url\(\s*(['\"]?)(?P<url>[^)'\"]+)\1\s*\)(?:\s*format\([^)]*\))?")
OUTSIDE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)
SERVED_AT = "/static/nhsuk/assets/fonts/"


def self_host_fonts(css: str, fonts_dir: Path) -> str:
    """The stylesheet with every outside font URL served locally or dropped."""

    def rewrite_rule(match: re.Match[str]) -> str:
        rule = match.group(0)
        head, _, body = rule.partition("{")
        declarations = [part for part in body.rstrip("}").split(";") if part.strip()]
        kept: list[str] = []
        for declaration in declarations:
            name, _, value = declaration.partition(":")
            if name.strip().lower() != "src":
                kept.append(declaration)
                continue
            sources = [_local_source(source, fonts_dir) for source in _split_sources(value)]
            local = [source for source in sources if source is not None]
            if not local:
                return ""
            kept.append(f"{name}:{','.join(local)}")
        return f"{head}{{{';'.join(kept)}}}"

    return FONT_FACE.sub(rewrite_rule, css)


def _split_sources(value: str) -> list[str]:
    """`url(a) format("woff2"),url(b) format("woff")` -> its sources (commas inside
    parentheses are not separators)."""
    sources, depth, current = [], 0, ""
    for char in value:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            sources.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        sources.append(current.strip())
    return sources


def _local_source(source: str, fonts_dir: Path) -> str | None:
    match = SOURCE.search(source)
    if match is None:
        return source  # local("...") and the like never leave the machine
    url = match.group("url")
    if not OUTSIDE.match(url):
        return source
    filename = url.rsplit("/", 1)[-1].split("?", 1)[0]
    if not (fonts_dir / filename).is_file():
        return None
    return source.replace(url, SERVED_AT + filename)


def main(argv: list[str]) -> int:
    """`python -m app.ui.fonts STYLESHEET`: rewrite the copied stylesheet in place."""
    if len(argv) != 1:
        print("usage: python -m app.ui.fonts STYLESHEET", file=sys.stderr)
        return 2
    stylesheet = Path(argv[0])
    css = stylesheet.read_text("utf-8")
    rewritten = self_host_fonts(css, stylesheet.parent / "assets" / "fonts")
    if rewritten != css:
        stylesheet.write_text(rewritten, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
