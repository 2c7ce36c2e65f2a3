"""String and text rules: StringNormalizer, StringSplit, TfIdfVectorizer.

Strings are numpy object arrays of Python ``str``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphopt.semantics import rule


@rule("StringNormalizer")
def string_normalizer(
    x: np.ndarray,
    *,
    case_change_action: str = "NONE",
    is_case_sensitive: int = 0,
    locale: str = "",
    stopwords: Sequence[str] | None = None,
) -> np.ndarray:
    """Drop the elements that are stop words (compared ignoring case unless
    ``is_case_sensitive``), then change case. X is (C) or (1, C); an empty result is
    [""] (or [[""]]) as the spec requires. Case mapping is Unicode's, whatever ``locale``."""
    if case_change_action not in ("NONE", "LOWER", "UPPER"):
        raise ValueError(f"StringNormalizer case_change_action {case_change_action!r} is unknown")
    fold = (lambda s: s) if is_case_sensitive else str.lower
    stops = {fold(w) for w in stopwords or ()}
    words = [str(w) for w in x.reshape(-1).tolist() if fold(str(w)) not in stops]
    if case_change_action == "LOWER":
        words = [w.lower() for w in words]
    elif case_change_action == "UPPER":
        words = [w.upper() for w in words]
    out = np.array(words or [""], dtype=object)
    return out.reshape(1, -1) if x.ndim == 2 else out


@rule("StringSplit")
def string_split(x: np.ndarray, *, delimiter: str | None = None, maxsplit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split each string; the substrings go along a new last axis, padded with "" to the
    longest split, and the second output counts them. No (or empty) delimiter splits on
    runs of whitespace, dropping empty pieces; ``maxsplit`` caps the splits."""
    sep = delimiter or None
    cap = -1 if maxsplit is None else maxsplit
    pieces = [str(s).split(sep, cap) for s in x.reshape(-1).tolist()]
    width = max((len(p) for p in pieces), default=0)
    out = np.array([p + [""] * (width - len(p)) for p in pieces], dtype=object).reshape(*x.shape, width)
    counts = np.array([len(p) for p in pieces], np.int64).reshape(x.shape)
    return out, counts


def _pool_ngrams(pool: Sequence[object], ngram_counts: Sequence[int]) -> dict[tuple[object, ...], int]:
    """n-gram -> its ordinal in the pool. ``ngram_counts[k]`` is where the (k+1)-grams start."""
    found: dict[tuple[object, ...], int] = {}
    bounds = [*ngram_counts, len(pool)]
    for k in range(len(ngram_counts)):
        n = k + 1
        for start in range(bounds[k], bounds[k + 1], n):
            found[tuple(pool[start : start + n])] = len(found)
    return found


@rule("TfIdfVectorizer")
def tf_idf_vectorizer(
    x: np.ndarray,
    *,
    max_gram_length: int,
    max_skip_count: int,
    min_gram_length: int,
    mode: str,
    ngram_counts: Sequence[int],
    ngram_indexes: Sequence[int],
    pool_int64s: Sequence[int] | None = None,
    pool_strings: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Count, per row, the pool's n-grams (lengths min..max) found with any skip from 0 to
    ``max_skip_count`` between their items, into output slot ``ngram_indexes[ordinal]``.
    TF keeps counts, IDF replaces a nonzero count by its weight, TFIDF multiplies them."""
    pool = list(pool_strings) if pool_strings is not None else list(pool_int64s or [])
    ordinal = _pool_ngrams(pool, ngram_counts)
    width = max(ngram_indexes) + 1 if len(ngram_indexes) else 0
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    counts = np.zeros((rows.shape[0], width), np.float32)
    for r, row in enumerate(rows.tolist()):
        for n in range(max(min_gram_length, 1), max_gram_length + 1):
            for skip in range(0, max_skip_count + 1 if n > 1 else 1):  # a 1-gram has no gaps
                step = skip + 1
                for start in range(0, len(row) - (n - 1) * step):
                    k = ordinal.get(tuple(row[start : start + (n - 1) * step + 1 : step]))
                    if k is not None:
                        counts[r, ngram_indexes[k]] += 1
    w = np.ones(width, np.float32)
    if weights is not None:  # weights[i] belongs to the pool's i-th n-gram, in slot ngram_indexes[i]
        w[np.asarray(ngram_indexes, np.int64)] = np.asarray(weights, np.float32)
    if mode == "IDF":
        counts = np.where(counts > 0, 1, 0) * w
    elif mode == "TFIDF":
        counts = counts * w
    elif mode != "TF":
        raise ValueError(f"TfIdfVectorizer mode {mode!r} is not TF, IDF or TFIDF")
    out = counts.astype(np.float32)
    return out.reshape(-1) if x.ndim == 1 else out
