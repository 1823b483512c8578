"""`messy_layout`: a program's text with its layout scrambled, tokens unchanged."""

from __future__ import annotations

import random
import re

from hypothesis import strategies as st

# A token of the language, a comment, or a run of the whitespace the grammar ignores.
_LEX = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?'
                  r'|[A-Za-z_][A-Za-z0-9_]*|[ \t\r\n\f]+|.', re.S)
_WORDISH = re.compile(r"[A-Za-z0-9_.\"]")  # two such tokens side by side would merge
_SPACES = (" ", " ", "  ", "\t", " \t ", "\f")
_COMMENT_CHARS = " abcdefghijklmnopqrstuvwxyz0123456789{}()[]#\"',.=*-"


def _is_space(tok: str) -> bool:
    return tok[0] in " \t\r\n\f"


def _gap(rng: random.Random, original: str, needs_space: bool, comments: bool, newline: bool = True) -> str:
    """New whitespace for a gap between two tokens. A gap that held a blank line keeps
    one (`qnnc fmt` keeps the author's blank lines between statements); one that did not
    gets at most one newline, so no blank line appears. Spaces where tokens would merge."""
    parts = [rng.choice(_SPACES) if needs_space or rng.random() < 0.5 else ""]
    if original.count("\n") >= 2:
        parts.append("\n" + rng.choice(("", " ", "\t")) + "\n" * rng.randint(1, 2))
    elif newline and rng.random() < 0.3:
        parts.append("\n" + rng.choice(("", "    ", "\t", "  ")))
    if comments and rng.random() < 0.2:
        text = "".join(rng.choice(_COMMENT_CHARS) for _ in range(rng.randint(0, 16)))
        parts.insert(1, " #" + text + "\n")
    return "".join(parts)


def _relayout(tokens: list[str], seed: int, comments: bool) -> str:
    rng = random.Random(seed)
    # The tokens of lines that end in a comment after code: such a line keeps its line
    # breaks (before it and inside it), so the comment keeps trailing the same statement.
    commented, line = set(), []
    for idx, tok in enumerate(tokens):
        if _is_space(tok) and "\n" in tok:
            line = []
        elif tok.startswith("#"):
            if any(not _is_space(tokens[j]) for j in line):
                commented.update(line)
            line = []
        else:
            line.append(idx)
    out = [rng.choice(("", " ", "\n", "\t")) if tokens and not tokens[0].startswith("#") else ""]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _is_space(tok):
            i += 1
            continue
        out.append(tok)
        gap = tokens[i + 1] if i + 1 < len(tokens) and _is_space(tokens[i + 1]) else ""
        k = i + 2 if gap else i + 1
        nxt = tokens[k] if k < len(tokens) else None
        if tok.startswith("#") or (nxt is not None and nxt.startswith("#")) or (
                "\n" in gap and k in commented):
            # Around an existing comment the layout stays: it decides own-line vs trailing.
            out.append(gap if not tok.startswith("#") or "\n" in gap else gap + "\n")
        elif nxt is None:
            out.append(rng.choice(("", "\n", "\n\n", "  \n", " ")))
        else:
            needs = bool(gap) and bool(_WORDISH.match(tok[-1])) and bool(_WORDISH.match(nxt[0]))
            out.append(_gap(rng, gap, needs, comments, newline=i not in commented))
        i = k
    return "".join(out)


def messy_layout(text: str, comments: bool = False) -> st.SearchStrategy[str]:
    """The program `text` with its layout scrambled: random spaces, tabs, form feeds and
    line breaks between tokens (and with `comments=True`, random `#` comments), same
    tokens in the same order. Without new comments `qnnc fmt` gives the same text for it
    as for `text`: existing comments and the gaps around them are kept as they are, a
    line that ends in a comment keeps its line breaks, and blank lines are kept exactly
    where `text` had them.

    The layout comes from one drawn seed (a program has hundreds of gaps; one draw each
    would dominate a test's time), so failures shrink the program, not the layout."""
    tokens = _LEX.findall(text)
    return st.integers(0, 2 ** 32 - 1).map(lambda seed: _relayout(tokens, seed, comments))
