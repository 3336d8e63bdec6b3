"""The classifier against the labelled corpus in tests/corpus (see tests/corpus/RUBRIC.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from policy_versions import diff
from policy_versions.materiality import classify

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from corpus import Pair, load_pairs  # noqa: E402

PAIRS = load_pairs()
# Written blind (see tests/corpus_holdout/README.md); the rules added after its first review were
# stated generally and tested on other sentences, but its figures are no longer fully unseen.
HOLDOUT = load_pairs(Path(__file__).resolve().parent / "corpus_holdout")
# The second blind set (tests/corpus_blind2/README.md): its first run is the honest
# out-of-sample figure (P 0.943, R 1.000). Its two over-calls (q14, r16) were then fixed with
# general rules tested on other sentences, so it is no longer blind; it guards against regressions.
BLIND2 = load_pairs(Path(__file__).resolve().parent / "corpus_blind2")
# The third blind set (tests/corpus_blind3/README.md): its first run, P 0.800 / R 0.757, is the
# honest out-of-sample figure. Its misses were then fixed with general rules tested on other
# sentences (tests/test_materiality.py), so it is no longer blind and the floors below guard
# against regressions only. Still missed: u15 (material -> minor: the condition of an emergency
# exception broadened without an "unless" / "except" word), so recall is asserted as a floor.
BLIND3 = load_pairs(Path(__file__).resolve().parent / "corpus_blind3")
# The fourth blind set (tests/corpus_blind4/README.md): its first run, P 0.868 / R 0.917 (60 of 69
# exact), is the honest out-of-sample figure. Its nine misses were then fixed with general rules
# tested on other sentences (tests/test_materiality.py), so it is no longer blind and the floors
# below guard against regressions only. No case of it is missed after the fixes; the rules for
# its over-calls are narrow (a curated synonym list, the adjective of a limiting adverb), so a
# fifth blind set is what would measure them.
BLIND4 = load_pairs(Path(__file__).resolve().parent / "corpus_blind4")


def test_corpus_is_large_and_covers_every_label() -> None:
    assert len(PAIRS) >= 80
    labels = {p.label for p in PAIRS}
    assert labels == {"cosmetic", "minor", "material"}
    assert len({p.base for p in PAIRS}) >= 4


def test_every_pair_replays_exactly() -> None:
    for pair in PAIRS:
        assert diff.apply(pair.old, diff.compute(pair.old, pair.new)) == pair.new, pair.id


def _material_scores(pairs: list[Pair]) -> tuple[float, float, list[str]]:
    predicted = {p.id: classify(p.old, p.new).verdict for p in pairs}
    truth = {p.id: p.label for p in pairs}
    tp = sum(1 for i in truth if truth[i] == "material" and predicted[i] == "material")
    fp = sum(1 for i in truth if truth[i] != "material" and predicted[i] == "material")
    fn = sum(1 for i in truth if truth[i] == "material" and predicted[i] != "material")
    recall = tp / (tp + fn)
    precision = tp / (tp + fp)
    misses = sorted(i for i in truth if (truth[i] == "material") != (predicted[i] == "material"))
    return recall, precision, misses


def test_material_recall_and_precision() -> None:
    recall, precision, misses = _material_scores(PAIRS)
    assert recall >= 0.97, (recall, misses)
    assert precision >= 0.90, (precision, misses)


def test_holdout_material_recall_and_precision() -> None:
    assert len(HOLDOUT) >= 70
    recall, precision, misses = _material_scores(HOLDOUT)
    assert recall >= 0.97, (recall, misses)
    assert precision >= 0.90, (precision, misses)


def test_second_blind_set_keeps_its_first_run_scores() -> None:
    assert len(BLIND2) >= 70
    recall, precision, misses = _material_scores(BLIND2)
    assert recall >= 0.97, (recall, misses)
    assert precision >= 0.94, (precision, misses)


def test_third_blind_set_keeps_its_after_fix_scores() -> None:
    assert len(BLIND3) >= 70
    recall, precision, misses = _material_scores(BLIND3)
    assert recall >= 0.97, (recall, misses)
    assert precision >= 0.97, (precision, misses)


def test_fourth_blind_set_keeps_its_after_fix_scores() -> None:
    assert len(BLIND4) >= 69
    recall, precision, misses = _material_scores(BLIND4)
    assert recall >= 0.97, (recall, misses)
    assert precision >= 0.97, (precision, misses)


def test_fourth_blind_set_replays_exactly() -> None:
    for pair in BLIND4:
        assert diff.apply(pair.old, diff.compute(pair.old, pair.new)) == pair.new, pair.id


def test_third_blind_set_replays_exactly() -> None:
    for pair in BLIND3:
        assert diff.apply(pair.old, diff.compute(pair.old, pair.new)) == pair.new, pair.id


def test_holdout_pairs_replay_exactly() -> None:
    for pair in HOLDOUT:
        assert diff.apply(pair.old, diff.compute(pair.old, pair.new)) == pair.new, pair.id


def test_no_typo_or_cosmetic_pair_is_called_material() -> None:
    for pair in PAIRS + HOLDOUT + BLIND2 + BLIND3 + BLIND4:
        if pair.label == "cosmetic":
            assert classify(pair.old, pair.new).verdict != "material", pair.id
