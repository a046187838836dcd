"""Entities in BIO tag sequences and their entity-level precision / recall / F1, as seqeval scores them.

seqeval (default mode, the conlleval rules) is the reference the tests compare with; it is not a runtime
dependency (it ships only in the dev requirements), and the two functions here are self-contained so the
exported training script carries them verbatim. Tags are "O", "B-TYPE" or "I-TYPE"; an I- that does not
continue an entity of its own type starts one (conlleval), so `I-PER I-PER` is one PER entity.
"""
from __future__ import annotations

import re

BIO_TAG = re.compile(r"^(O|[BI]-\S.*)$")


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) of each entity in one sentence's tags, both ends included."""
    out = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = ("O", "") if chunk == "O" else (chunk[0], chunk[2:])
        # conlleval: an entity ends before a B, an O or a change of type; one starts at a B, at an I after
        # an O, or at any change of type
        if prev_tag != "O" and (tag in ("B", "O") or type_ != prev_type):
            out.append((prev_type, begin, i - 1))
        if tag == "B" or (tag == "I" and (prev_tag == "O" or type_ != prev_type)):
            begin = i
        prev_tag, prev_type = tag, type_
    return out


def entity_scores(true: list[list[str]], pred: list[list[str]]) -> dict:
    """Micro precision / recall / F1 over entities (an entity counts when type and both ends match), token
    accuracy, and per type {"entity", "precision", "recall", "f1", "support"} sorted by type."""
    found: dict[str, list[int]] = {}  # type -> [true positives, predicted, true]
    right = total = 0
    for t, p in zip(true, pred, strict=True):
        gold, guess = set(entities(t)), set(entities(p))
        for kind, *_ in gold | guess:
            found.setdefault(kind, [0, 0, 0])
        for e in gold & guess:
            found[e[0]][0] += 1
        for e in guess:
            found[e[0]][1] += 1
        for e in gold:
            found[e[0]][2] += 1
        right += sum(a == b for a, b in zip(t, p, strict=True))
        total += len(t)

    def prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
        precision = tp / n_pred if n_pred else 0.0  # seqeval's zero_division: 0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    per_entity = []
    for kind in sorted(found):
        precision, recall, f1 = prf(*found[kind])
        per_entity.append({"entity": kind, "precision": precision, "recall": recall, "f1": f1,
                           "support": found[kind][2]})
    precision, recall, f1 = prf(*(sum(c[i] for c in found.values()) for i in range(3)))
    return {"precision": precision, "recall": recall, "f1": f1,
            "accuracy": right / total if total else 0.0, "per_entity": per_entity}
