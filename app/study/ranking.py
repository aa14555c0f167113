"""How central each sentence is to its chapter: TextRank (PageRank over sentence similarity).

Sentences are tf-idf vectors of their content words (folded to one spelling); two sentences are
linked by their cosine similarity; a sentence many others resemble ranks high. numpy does it in a
few milliseconds for a chapter's few hundred sentences.
"""

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from app.study.sentences import Sentence
from app.study.terms import STOP_WORDS, key, words_of

DAMPING = 0.85
ITERATIONS = 50
BLOCK = 1500  # 1,500² float32 similarities: 9 MB


def content_words(text: str) -> list[str]:
    return [key(word) for word in words_of(text) if word.lower() not in STOP_WORDS and len(word) > 2]


def centrality(sentences: Sequence[Sentence]) -> list[float]:
    """A score per sentence, summing to 1 (all equal when nothing links them). A whole book is ranked
    in runs of BLOCK consecutive sentences, so memory stays bounded (BLOCK² similarities at a time)."""
    count = len(sentences)
    if count > BLOCK:
        scores: list[float] = []
        for start in range(0, count, BLOCK):
            block = sentences[start : start + BLOCK]
            scores += [score * len(block) / count for score in _textrank(block)]
        return scores
    return _textrank(sentences)


def _textrank(sentences: Sequence[Sentence]) -> list[float]:
    count = len(sentences)
    if count == 0:
        return []
    bags = [Counter(content_words(sentence.text)) for sentence in sentences]
    document_frequency: Counter[str] = Counter()
    for bag in bags:
        document_frequency.update(bag.keys())
    vocabulary = {word: index for index, word in enumerate(document_frequency)}
    if not vocabulary:
        return [1 / count] * count
    matrix = np.zeros((count, len(vocabulary)), dtype=np.float32)
    for row, bag in enumerate(bags):
        for word, times in bag.items():
            matrix[row, vocabulary[word]] = (1 + math.log(times)) * math.log(
                count / document_frequency[word] + 1
            )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.where(norms == 0, 1, norms)
    similarity = matrix @ matrix.T
    np.fill_diagonal(similarity, 0)
    sums = similarity.sum(axis=1, keepdims=True)
    transition = np.where(sums > 0, similarity / np.where(sums == 0, 1, sums), 1 / count)
    scores = np.full(count, 1 / count, dtype=np.float32)
    for _ in range(ITERATIONS):
        updated = (1 - DAMPING) / count + DAMPING * (transition.T @ scores)
        if np.abs(updated - scores).sum() < 1e-6:
            scores = updated
            break
        scores = updated
    return [float(score) for score in scores]
