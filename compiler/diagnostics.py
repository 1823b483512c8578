"""Compiler-grade diagnostics, rendered Rust-style or as JSON.

    error[Q0201]: unknown layer `h3`
     --> examples/mnist.qnn:14:42
       |
    14 |     layer h2[512] = rotation(a) of dense(h3, bias = off)
       |                                          ^^ not declared in network `mnist`
       |
       = help: did you mean `h1`?

Code ranges (`qnnc.compiler.codes` has the table, docs/diagnostics.md documents it):
  Q01xx syntax · Q02xx semantic · Q03xx target capabilities · Q04xx command line ·
  Q05xx files and data (checkpoints, data sets, IR JSON) · Q06xx runtime limits.
A diagnostic with a code the table lacks cannot be made (a bug, caught where it is made).

Every error qnnc reports to a user is a `Diagnostic`, raised inside a `QnncError`. The
CLI catches `QnncError` (and only it) and prints; anything else is a bug.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from qnnc.compiler import codes
from qnnc.compiler.ir import NO_SPAN, Span
from qnnc.compiler.limits import MAX_DIAGNOSTICS, SNIPPET_WIDTH


@dataclass(frozen=True)
class Diagnostic:
    code: str  # "Q0201"
    message: str
    span: Optional[Span] = None
    label: str = ""  # shown under the caret
    help: Optional[str] = None
    notes: tuple[str, ...] = ()
    severity: str = "error"

    def __post_init__(self) -> None:
        codes.check(self.code)

    def to_json(self) -> dict:
        d = {"severity": self.severity, "code": self.code, "message": self.message}
        if self.span is not None:
            d["file"] = self.span.file
            d["line"], d["col"] = self.span.line, self.span.col
            d["end_line"], d["end_col"] = self.span.end_line, self.span.end_col
        if self.label:
            d["label"] = self.label
        if self.help:
            d["help"] = self.help
        if self.notes:
            d["notes"] = list(self.notes)
        return d


class QnncError(Exception):
    """One or more diagnostics for a user error. `exit_code` is 1 for errors in a
    program or file, 2 for bad command-line use."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic], exit_code: int = 1):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        self.exit_code = exit_code
        super().__init__("; ".join(f"{d.code}: {d.message}" for d in self.diagnostics))


def error(code: str, message: str, span: Optional[Span] = None, *, label: str = "",
          help: Optional[str] = None, notes: Iterable[str] = (), exit_code: int = 1) -> QnncError:
    """Shorthand: `raise error("Q0501", "...", help="...")`."""
    return QnncError(Diagnostic(code, message, span, label, help, tuple(notes)), exit_code)


def did_you_mean(name: str, candidates: Iterable[str]) -> Optional[str]:
    """A `help:` line suggesting the closest candidate, or None."""
    cands = sorted(set(candidates))
    close = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    if not close and len(name) >= 2:
        # Short names (`h3` for `h1`) fall under difflib's ratio; one edit away is close.
        close = [c for c in cands if _one_edit(name, c)][:1]
    if close:
        return f"did you mean `{close[0]}`?"
    return None


def _one_edit(a: str, b: str) -> bool:
    """Whether b is a with one character substituted, inserted or deleted."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    if len(a) > len(b):
        a, b = b, a
    return any(b[:i] + b[i + 1:] == a for i in range(len(b)))


class Collector:
    """Gathers several diagnostics in one pass so a run reports all it can."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def add(self, code: str, message: str, span: Optional[Span] = None, label: str = "", *,
            help: Optional[str] = None, notes: Iterable[str] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label, help, tuple(notes)))

    def extend(self, err: QnncError) -> None:
        self.diagnostics.extend(err.diagnostics)

    def __bool__(self) -> bool:
        return bool(self.diagnostics)

    def raise_if_any(self) -> None:
        if self.diagnostics:
            # Report in source order; stable for golden files.
            ordered = sorted(self.diagnostics, key=_sort_key)
            raise QnncError(ordered)


def _sort_key(d: Diagnostic):
    if d.span is None:
        return ("", 0, 0, d.code)
    return (d.span.file, d.span.line, d.span.col, d.code)


# --------------------------------------------------------------------------- sources
#
# The one rule for snippets: a diagnostic shows only text of a source this run loaded as
# a program (a .qnn file, an import, an IR JSON file), kept here in memory when it was
# read. A span naming any other path (an IR span may name any file) shows its place
# only: the renderer never opens a file.

_SOURCES: dict[str, str] = {}
_LINES: dict[str, list[str]] = {}
_MAX_REMEMBERED = 256  # a long-lived library process keeps the most recent sources


def remember_source(file: str, text: str) -> None:
    """Record the text of a source loaded as a program, for snippets."""
    _SOURCES.pop(file, None)
    _LINES.pop(file, None)
    _SOURCES[file] = text
    while len(_SOURCES) > _MAX_REMEMBERED:
        old = next(iter(_SOURCES))
        del _SOURCES[old]
        _LINES.pop(old, None)


def forget_sources() -> None:
    """A new run (the CLI's `main`) starts with no remembered sources."""
    _SOURCES.clear()
    _LINES.clear()


def _lines_of(file: str, sources: Optional[dict[str, str]], cache: dict) -> Optional[list[str]]:
    """The lines of a loaded source, split once per file and rendering (so rendering is
    linear in the file's size however many diagnostics point into it)."""
    if sources is not None and file in sources:
        if file not in cache:
            cache[file] = source_lines(sources[file])
        return cache[file]
    if file in _SOURCES:
        if file not in _LINES:
            _LINES[file] = source_lines(_SOURCES[file])
        return _LINES[file]
    return None


# --------------------------------------------------------------------------- rendering


def render(diag: Diagnostic, sources: Optional[dict[str, str]] = None, _cache: Optional[dict] = None) -> str:
    """Rust-style text. The snippet comes from `sources` (file name -> text) or from the
    sources this run loaded as programs (`remember_source`); no file is ever opened."""
    out = [_clean(f"{diag.severity}[{diag.code}]: {_cut(diag.message)}")]
    span = diag.span
    if span is not None:
        # NO_SPAN marks a node built without a source (IR made by code): no snippet, even
        # when a program parsed under the same pseudo-name was remembered.
        lines = None if span == NO_SPAN else _lines_of(span.file, sources, {} if _cache is None else _cache)
        where = _printable(_cut(span.file))
        if lines is not None and 1 <= span.line <= max(len(lines), 1):
            src = lines[span.line - 1] if lines else ""
            gutter = " " * len(str(span.line))
            out.append(f"{gutter}--> {where}:{span.line}:{span.col}")
            out.append(f"{gutter} |")
            start = max(span.col, 1)
            if span.end_line == span.line and span.end_col > span.col:
                width = span.end_col - span.col
            else:
                width = max(len(src) - start + 1, 1)
            width = max(1, min(width, max(len(src) - start + 1, 1)))
            shown, start, width = _window(src, start, width)
            out.append(_clean(f"{span.line} | {_expand_tabs(shown)}"))
            caret = " " * (start - 1) + "^" * width
            out.append(_clean(f"{gutter} | {caret}" + (f" {_cut(diag.label)}" if diag.label else "")))
            if diag.help or diag.notes:
                out.append(f"{gutter} |")
        else:
            out.append(f" --> {where}:{span.line}:{span.col}")
        pad = " " * len(str(span.line))
    else:
        pad = ""
    for note in diag.notes:
        out.append(_clean(f"{pad} = note: {_cut(note)}"))
    if diag.help:
        out.append(_clean(f"{pad} = help: {_cut(diag.help)}"))
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: Optional[dict[str, str]] = None) -> str:
    """All diagnostics; after MAX_DIAGNOSTICS of them one line says how many more there are."""
    shown = diags[:MAX_DIAGNOSTICS]
    cache: dict = {}
    body = "\n\n".join(render(d, sources, cache) for d in shown)
    if len(diags) > len(shown):
        body += f"\n\nerror: {len(diags) - len(shown)} more diagnostics not shown (the first {len(shown)} are above)"
    n = sum(1 for d in diags if d.severity == "error")
    if n > 1:
        body += f"\n\nerror: aborting due to {n} previous errors"
    return body + "\n"


def _window(src: str, start: int, width: int) -> tuple[str, int, int]:
    """At most SNIPPET_WIDTH characters of a line around the caret (columns 1-based);
    a cut side is marked with `...`."""
    if len(src) <= SNIPPET_WIDTH:
        return src, start, width
    width = min(width, SNIPPET_WIDTH // 2)
    lo = max(0, min(start - 1 - SNIPPET_WIDTH // 4, len(src) - SNIPPET_WIDTH))
    hi = lo + SNIPPET_WIDTH
    shown = src[lo:hi]
    prefix = "..." if lo > 0 else ""
    suffix = "..." if hi < len(src) else ""
    return prefix + shown + suffix, start - lo + len(prefix), width


def _cut(text: str, limit: int = 4 * SNIPPET_WIDTH) -> str:
    """A message, label or note of bounded length (one may quote a long value)."""
    return text if len(text) <= limit else text[:limit] + "..."


def _clean(text: str) -> str:
    """Text that any stream can encode: a lone surrogate (from a JSON `\\ud800`) is escaped."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def render_json(diags: Sequence[Diagnostic]) -> str:
    shown = diags[:MAX_DIAGNOSTICS]
    doc: dict = {"diagnostics": [d.to_json() for d in shown]}
    if len(diags) > len(shown):
        doc["not_shown"] = len(diags) - len(shown)
    return json.dumps(doc, indent=2) + "\n"


def source_lines(text: str) -> list[str]:
    """The lines of a source as spans count them: only `\n` ends a line (the lexer's
    rule). `str.splitlines` also splits at form feeds, `\x1c`..., `\u2028` and lone
    `\r`, which would show the wrong line under a caret."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [l[:-1] if l.endswith("\r") else l for l in lines]


def _expand_tabs(s: str) -> str:
    # Columns count characters; a tab (or a form feed, a lone `\r`...) would misplace the
    # caret or garble the terminal, so show it as one space.
    return "".join(c if c.isprintable() else " " for c in s)
