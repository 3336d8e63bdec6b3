"""Diff + classify speed on ~100 KB policy versions, beside plain diff-match-patch, and a 1 MB
pathological pair; appends its section to BENCHMARKS_classifier.md."""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_classifier import machine, write_section  # noqa: E402
from diff_match_patch import diff_match_patch  # noqa: E402

from policy_versions import diff  # noqa: E402
from policy_versions.materiality import classify  # noqa: E402

RUNS = 21
TOPICS = [
    (
        "Information We Collect",
        [
            "account details",
            "device identifiers",
            "usage logs",
            "support messages",
            "billing records",
            "crash reports",
        ],
    ),
    (
        "How We Use Information",
        [
            "operating the service",
            "preventing fraud",
            "billing",
            "answering support requests",
            "improving features",
        ],
    ),
    (
        "Sharing of Information",
        [
            "hosting providers",
            "payment processors",
            "email services",
            "professional advisers",
            "public authorities",
        ],
    ),
    (
        "International Transfers",
        [
            "servers in the European Union",
            "standard contractual clauses",
            "providers in the United States",
        ],
    ),
    ("Data Retention", ["account data", "server logs", "invoices", "backups"]),
    ("Security", ["encryption in transit", "access controls", "staff training", "audits"]),
    ("Your Rights", ["access", "correction", "deletion", "portability", "objection"]),
    ("Cookies", ["session cookies", "preference cookies", "analytics cookies"]),
    ("Children", ["users under 16", "parental consent"]),
    ("Changes to This Policy", ["email notice", "in-app notice"]),
]
VERBS = ["process", "store", "review", "protect", "limit", "document", "update", "check"]
PERIODS = ["7 days", "14 days", "30 days", "90 days", "12 months", "6 years"]


def paragraph(rng: random.Random, subject: str, items: list[str]) -> str:
    sentences = []
    for _ in range(rng.randint(3, 6)):
        item = rng.choice(items)
        sentences.append(
            rng.choice(
                [
                    f"We {rng.choice(VERBS)} {item} only where this is necessary for {subject}.",
                    f"Where we rely on {item}, we keep records for {rng.choice(PERIODS)}.",
                    f"You can ask us about {item} at any time, and we answer within "
                    f"{rng.choice(PERIODS)}.",
                    f"Our team may {rng.choice(VERBS)} {item} to keep the service reliable "
                    "and secure for every customer.",
                    f"We do not use {item} for advertising, and we do not sell {item}.",
                ]
            )
        )
    return " ".join(sentences)


def make_policy(size: int = 100_000, seed: int = 7) -> tuple[str, list[str]]:
    rng = random.Random(seed)
    paragraphs: list[str] = []
    parts = ["# Example Cloud Privacy Policy\n\n**Last updated:** 3 March 2025\n\n"]
    total = len(parts[0])
    n = 0
    while total < size:
        title, items = TOPICS[n % len(TOPICS)]
        heading = f"## {n + 1}. {title}\n\n"
        parts.append(heading)
        total += len(heading)
        for _ in range(rng.randint(4, 9)):
            text = paragraph(rng, title.lower(), items)
            paragraphs.append(text)
            parts.append(text + "\n\n")
            total += len(text) + 2
        n += 1
    return "".join(parts), paragraphs


def edit_policy(text: str, paragraphs: list[str], share: float = 0.05, seed: int = 11) -> str:
    """Edit about `share` of the paragraphs: a number, a word, an added sentence, a deletion."""
    rng = random.Random(seed)
    chosen = rng.sample(paragraphs, max(1, int(len(paragraphs) * share)))
    for n, old in enumerate(chosen):
        kind = n % 4
        if kind == 0:
            new = old.replace("days", "weeks", 1)
        elif kind == 1:
            new = old.replace("only where", "where", 1)
        elif kind == 2:
            new = old + " We also share this with Brightline Analytics Inc."
        else:
            new = old[: len(old) // 2].rsplit(". ", 1)[0] + "."
        text = text.replace(old, new, 1)
    return text


def unrelated(seed: int, size: int) -> str:
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(5, 30))) + ".\n"
        if rng.random() < 0.03:
            line = "## " + line
        lines.append(line)
        total += len(line)
    return "".join(lines)


def median_ms(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    old, paragraphs = make_policy()
    new = edit_policy(old, paragraphs)
    result = diff.compute(old, new)
    verdict = classify(old, new, diff=result)
    ours = median_ms(lambda: classify(old, new, diff=diff.compute(old, new)))
    ours_diff = median_ms(lambda: diff.compute(old, new))
    plain = median_ms(lambda: diff_match_patch().diff_main(old, new))

    big_old, big_new = unrelated(1, 1_000_000), unrelated(2, 1_000_000)
    started = time.perf_counter()
    big = diff.compute(big_old, big_new)
    big_diff_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    big_verdict = classify(big_old, big_new, diff=big)
    big_classify_ms = (time.perf_counter() - started) * 1000
    flat_old, flat_new = big_old.replace("## ", ""), big_new.replace("## ", "")
    started = time.perf_counter()
    flat = diff.compute(flat_old, flat_new)
    flat_ms = (time.perf_counter() - started) * 1000

    target = "met" if ours <= 50 else "NOT met"
    body = f"""## Diff engine speed

Machine: {machine()}

Command: `.venv/bin/python bench/bench_diff.py` (median of {RUNS} runs each, same process)

Inputs: a generated policy of {len(old):,} characters ({len(paragraphs)} paragraphs, \
{old.count(chr(10) + "## ")} sections) and a version with {len(result.changes)} changes \
(~5% of paragraphs edited: periods, qualifiers, an added recipient, truncations); \
verdict `{verdict.verdict}` with {len(verdict.reasons)} reasons.

| Case | median |
|---|---|
| `compute()` + `classify()` (100 KB, 5% edited) | {ours:.1f} ms (target <= 50 ms: {target}) |
| `compute()` alone | {ours_diff:.1f} ms |
| plain `diff_match_patch().diff_main(old, new)` (defaults) | {plain:.1f} ms |
| ratio compute+classify / plain diff_main | {ours / plain:.2f}x |

Pathological: two unrelated texts of {len(big_old):,} and {len(big_new):,} characters.

| Case | time | approximate |
|---|---|---|
| `compute()` with ~3% of lines as headings | {big_diff_ms:.0f} ms | {big.approximate} |
| `classify()` on that diff | {big_classify_ms:.0f} ms (verdict {big_verdict.verdict}) \
| {big_verdict.approximate} |
| `compute()` without any heading (one section) | {flat_ms:.0f} ms | {flat.approximate} |
"""
    print(body)
    write_section("bench_diff", body)


if __name__ == "__main__":
    main()
