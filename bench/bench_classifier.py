"""Materiality classifier vs two baselines on the labelled corpus, with a Markdown report."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "corpus"))

from corpus import Pair, load_pairs  # noqa: E402
from diff_match_patch import diff_match_patch  # noqa: E402

from policy_versions.materiality import classify  # noqa: E402

LABELS = ("cosmetic", "minor", "material")
OUT = ROOT / "BENCHMARKS_classifier.md"
HOLDOUT = ROOT / "tests" / "corpus_holdout"
# The date the rules were last changed after looking at the held-out set's disagreements.
HOLDOUT_INFORMED = "2026-11-23"


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"nproc={os.cpu_count()}, CPU: {cpu}, Python {platform.python_version()}"


def scores(truth: list[str], predicted: list[str]) -> tuple[float, float, float]:
    tp = sum(t == p == "material" for t, p in zip(truth, predicted, strict=True))
    fp = sum(t != "material" and p == "material" for t, p in zip(truth, predicted, strict=True))
    fn = sum(t == "material" and p != "material" for t, p in zip(truth, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def matrix(truth: list[str], predicted: list[str]) -> str:
    rows = ["truth \\ predicted | " + " | ".join(LABELS), "---|---|---|---"]
    for t in LABELS:
        counts = [
            sum(1 for a, b in zip(truth, predicted, strict=True) if a == t and b == p)
            for p in LABELS
        ]
        rows.append(f"{t} | " + " | ".join(str(c) for c in counts))
    return "\n".join(rows)


def report(name: str, truth: list[str], predicted: list[str]) -> str:
    p, r, f = scores(truth, predicted)
    return (
        f"### {name}\n\nmaterial: precision {p:.3f}, recall {r:.3f}, F1 {f:.3f} "
        f"(n={len(truth)})\n\n{matrix(truth, predicted)}\n"
    )


def changed_ratio(pair: Pair) -> float:
    """Levenshtein distance of a character diff, over the old length (the naive baseline)."""
    dmp = diff_match_patch()
    diffs = dmp.diff_main(pair.old, pair.new)
    return dmp.diff_levenshtein(diffs) / max(1, len(pair.old))


def best_threshold(pairs: list[Pair], ratios: dict[str, float]) -> float:
    truth = [p.label for p in pairs]
    candidates = sorted({ratios[p.id] for p in pairs})
    best, best_f1 = 0.02, -1.0
    for t in candidates:
        predicted = ["material" if ratios[p.id] >= t else "minor" for p in pairs]
        f1 = scores(truth, predicted)[2]
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best


def run() -> str:
    pairs = load_pairs()
    truth = [p.label for p in pairs]
    started = time.perf_counter()
    predicted = [classify(p.old, p.new).verdict for p in pairs]
    elapsed = time.perf_counter() - started
    ratios = {p.id: changed_ratio(p) for p in pairs}
    # The threshold is fitted on even-numbered pairs and judged on odd-numbered ones, so the
    # baseline is not flattered by choosing its cut-off on the data it is scored on.
    fit = [p for n, p in enumerate(pairs) if n % 2 == 0]
    held = [p for n, p in enumerate(pairs) if n % 2 == 1]
    threshold = best_threshold(fit, ratios)
    by_id = dict(zip([p.id for p in pairs], predicted, strict=True))
    held_truth = [p.label for p in held]
    parts = [
        f"Corpus: {len(pairs)} labelled pairs from {len({p.base for p in pairs})} base documents "
        f"({', '.join(f'{sum(t == label for t in truth)} {label}' for label in LABELS)}). "
        f"Classifying all pairs took {elapsed * 1000:.0f} ms.\n",
        "Caveat: the classifier was developed with this corpus at hand (several rules were added "
        "after seeing failures on it), so its figures here are in-sample and overstate accuracy "
        "on unseen policies; the baselines have no such advantage.\n",
        report("Classifier (all pairs)", truth, predicted),
        report("Baseline: every change is material (all pairs)", truth, ["material"] * len(pairs)),
        report(
            "Baseline: fixed 2% changed characters (all pairs)",
            truth,
            ["material" if ratios[p.id] >= 0.02 else "minor" for p in pairs],
        ),
        f"Changed-characters threshold fitted for best F1 on the {len(fit)} even-numbered pairs: "
        f"{threshold:.4%}; the next two tables are the {len(held)} odd-numbered pairs only.\n",
        report(
            f"Baseline: changed characters >= {threshold:.4%} (held-out half)",
            held_truth,
            ["material" if ratios[p.id] >= threshold else "minor" for p in held],
        ),
        report("Classifier (held-out half, same pairs)", held_truth, [by_id[p.id] for p in held]),
    ]
    misses = [
        f"{p.id} ({p.label} -> {by_id[p.id]}: {p.note})" for p in pairs if by_id[p.id] != p.label
    ]
    parts.append("Disagreements with the labels: " + ("; ".join(misses) or "none") + "\n")
    parts.append(run_holdout(best_threshold(pairs, ratios)))
    return "\n".join(parts)


def run_holdout(threshold: float) -> str:
    """The same classifier and baselines on tests/corpus_holdout, written blind to the rules."""
    pairs = load_pairs(HOLDOUT)
    truth = [p.label for p in pairs]
    started = time.perf_counter()
    predicted = [classify(p.old, p.new).verdict for p in pairs]
    elapsed = time.perf_counter() - started
    ratios = {p.id: changed_ratio(p) for p in pairs}
    misses = [
        f"{p.id} ({p.label} -> {v}: {p.note})"
        for p, v in zip(pairs, predicted, strict=True)
        if v != p.label
    ]
    parts = [
        "## Blind held-out set (tests/corpus_holdout)\n",
        f"{len(pairs)} labelled pairs from {len({p.base for p in pairs})} base documents "
        f"({', '.join(f'{sum(t == label for t in truth)} {label}' for label in LABELS)}), "
        "written without access to the rules (see tests/corpus_holdout/README.md). "
        f"Classifying all pairs took {elapsed * 1000:.0f} ms.\n",
        f"Caveat: after the fixes of {HOLDOUT_INFORMED} this set informed the rules, so it is no "
        "longer fully blind. Its first run (before those fixes) scored material precision "
        "0.842, recall 0.914, F1 0.877 with 10 disagreements; the fixes were stated as general "
        "rules (opposites are not typos, legal forms name no topic or party, numbers and "
        "limiting words compared per sentence, reordered items, notice channels, items of a "
        "prohibition, paraphrased sentences) and unit-tested on other sentences, but the figures "
        "below are partly in-sample and overstate accuracy on unseen policies. The baselines "
        "have no such advantage.\n",
        report("Classifier (held-out set)", truth, predicted),
        report(
            "Baseline: every change is material (held-out set)", truth, ["material"] * len(pairs)
        ),
        report(
            "Baseline: fixed 2% changed characters (held-out set)",
            truth,
            ["material" if ratios[p.id] >= 0.02 else "minor" for p in pairs],
        ),
        report(
            f"Baseline: changed characters >= {threshold:.4%}, fitted on all of tests/corpus "
            "(held-out set)",
            truth,
            ["material" if ratios[p.id] >= threshold else "minor" for p in pairs],
        ),
        "Disagreements with the labels: " + ("; ".join(misses) or "none") + "\n",
    ]
    return "\n".join(parts)


def write_section(name: str, body: str) -> None:
    """Replace this benchmark's block in BENCHMARKS_classifier.md, keeping the other one."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block
    OUT.write_text(text, encoding="utf-8")


def main() -> None:
    body = run()
    section = (
        "## Materiality classifier\n\n"
        f"Machine: {machine()}\n\nCommand: `.venv/bin/python bench/bench_classifier.py`\n\n"
        f"{body}"
    )
    print(section)
    write_section("bench_classifier", section)


if __name__ == "__main__":
    main()
