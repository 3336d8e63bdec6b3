"""Time-bounded word diff: tokens, a line-then-word diff with diff-match-patch, one budget."""

from __future__ import annotations

import re
import time

from diff_match_patch import diff_match_patch

# Tokens for word mode. CJK ideographs and kana are one token each because those scripts do not
# separate words with spaces; punctuation and Markdown markup are one token per character so that
# "**not**" -> "not" diffs as removed markup, not as a replaced word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# E-mail addresses and URLs stay whole so that a changed address reads as one replacement.
_WORD_TOKEN = re.compile(
    rf"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|https?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]"
    rf"|[{_CJK}]|[^\W_{_CJK}]+|\s+|.",
    re.DOTALL,
)
_LINE_TOKEN = re.compile(r"[^\n]*\n|[^\n]+")
WORDS = re.compile(r"\w+")
_MAX_TOKENS = 1_000_000  # chr() budget of the token-to-character trick, with a safe margin


def word_count(text: str) -> int:
    return len(WORDS.findall(text))


class Budget:
    """One deadline shared by every diff_main call of a compute(), so the total stays bounded."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + max(seconds, 0.0)
        self.exhausted = False

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()


def _token_diff(
    a: list[str], b: list[str], budget: Budget, *, semantic: bool = False
) -> list[tuple[str, str]]:
    """Diff two token lists by mapping each distinct token to one character (dmp's line mode).

    With `semantic`, dmp's semantic cleanup runs on the encoded tokens rather than on the text,
    so that edits always start and end on token boundaries (never inside an e-mail address).
    """
    table: dict[str, int] = {}
    tokens: list[str] = []

    def encode(seq: list[str]) -> str:
        out = []
        for tok in seq:
            code = table.get(tok)
            if code is None:
                code = table[tok] = len(tokens)
                tokens.append(tok)
            out.append(chr(code))
        return "".join(out)

    remaining = budget.remaining()
    if remaining <= 0.001 or len(set(a)) + len(set(b)) > _MAX_TOKENS:
        budget.exhausted = True
        return _replace("".join(a), "".join(b))
    ca, cb = encode(a), encode(b)
    dmp = diff_match_patch()
    # Diff_Timeout is the rest of the whole compute() budget, never dmp's 1 s default: on expiry
    # dmp silently returns delete-all/insert-all for the unfinished part, so we must know when it
    # may have happened (see field notes, section 4) and flag the result approximate.
    dmp.Diff_Timeout = remaining
    started = time.perf_counter()
    diffs = dmp.diff_main(ca, cb, False)
    if time.perf_counter() - started >= remaining * 0.95:
        budget.exhausted = True
    if semantic and len(diffs) > 2:
        dmp.diff_cleanupSemantic(diffs)
    ops = {0: "=", -1: "-", 1: "+"}
    return [(ops[op], "".join(tokens[ord(ch)] for ch in chars)) for op, chars in diffs]


def _replace(a: str, b: str) -> list[tuple[str, str]]:
    return [seg for seg in (("-", a), ("+", b)) if seg[1]]


def _merge(segments: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join neighbours with the same op and put deletions before insertions inside a run."""
    out: list[tuple[str, str]] = []
    run: dict[str, list[str]] = {"-": [], "+": []}

    def flush() -> None:
        for op in ("-", "+"):
            if run[op]:
                out.append((op, "".join(run[op])))
                run[op] = []

    for op, text in segments:
        if not text:
            continue
        if op == "=":
            flush()
            if out and out[-1][0] == "=":
                out[-1] = ("=", out[-1][1] + text)
            else:
                out.append(("=", text))
        else:
            run[op].append(text)
    flush()
    return out


def _word_diff(a: str, b: str, budget: Budget) -> list[tuple[str, str]]:
    return _token_diff(_WORD_TOKEN.findall(a), _WORD_TOKEN.findall(b), budget, semantic=True)


def diff_text(a: str, b: str, budget: Budget) -> list[tuple[str, str]]:
    """Lines first, then words inside each changed run of lines only."""
    if a == b:
        return [("=", a)] if a else []
    if not a or not b:
        return _replace(a, b)
    lines = _token_diff(_LINE_TOKEN.findall(a), _LINE_TOKEN.findall(b), budget)
    out: list[tuple[str, str]] = []
    pending = {"-": [], "+": []}

    def flush() -> None:
        old, new = "".join(pending["-"]), "".join(pending["+"])
        pending["-"], pending["+"] = [], []
        if old and new:
            out.extend(_word_diff(old, new, budget))
        else:
            out.extend(_replace(old, new))

    for op, text in lines:
        if op == "=":
            flush()
            out.append((op, text))
        else:
            pending[op].append(text)
    flush()
    return _merge(out)
