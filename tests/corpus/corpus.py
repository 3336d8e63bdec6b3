"""Load the labelled version pairs: a base document per company plus small edits per case."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
_HEADER = re.compile(r"^## ([a-z]\d+) (cosmetic|minor|material) \| (.+)$")


@dataclass(frozen=True)
class Pair:
    id: str
    base: str
    label: str
    note: str
    old: str
    new: str


def _apply(base_text: str, edits: list[tuple[str, str]], case_id: str) -> str:
    text = base_text
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"{case_id}: edit target found {count} times: {old[:60]!r}")
        text = text.replace(old, new, 1)
    return text


def _parse(path: Path) -> list[tuple[re.Match[str], list[tuple[str, str]]]]:
    cases: list[tuple[re.Match[str], list[tuple[str, str]]]] = []
    block: list[str] | None = None
    old_part: list[str] | None = None
    for line in path.read_text(encoding="utf-8").split("\n"):
        if block is None:
            m = _HEADER.match(line)
            if m:
                cases.append((m, []))
            elif line == "<<<" and cases:
                block, old_part = [], None
            elif line.strip():
                raise ValueError(f"{path.name}: unexpected line {line!r}")
        elif line == "===":
            old_part, block = block, []
        elif line == ">>>":
            if old_part is None:
                raise ValueError(f"{path.name}: block without ===")
            cases[-1][1].append(("\n".join(old_part), "\n".join(block)))
            block = None
        else:
            block.append(line)
    return cases


def load_pairs(folder: Path = HERE) -> list[Pair]:
    """Every case in ``<base>.cases``, applied to ``bases/<base>.md`` (or ``.txt``).

    A case is a header ``## <id> <label> | <note>`` then one or more blocks
    ``<<<`` old lines ``===`` new lines ``>>>``; each old text must occur exactly once in the base.
    """
    pairs: list[Pair] = []
    for path in sorted(folder.glob("*.cases")):
        base_text = next((folder / "bases").glob(path.stem + ".*")).read_text(encoding="utf-8")
        for header, edits in _parse(path):
            case_id, label, note = header.groups()
            new_text = _apply(base_text, edits, case_id)
            pairs.append(Pair(case_id, path.stem, label, note, base_text, new_text))
    ids = [p.id for p in pairs]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate case ids")
    return pairs
