"""General text for the preserved-key statistics, offline: Python's reference documentation as `help()` shows it.

AlphaEdit and UniErase take the keys of preserved knowledge from 100,000 Wikipedia articles. With no download
possible, the stand-in is text every CPython ships: `pydoc_data.topics`, 79 topics and about 470,000 characters
of English prose with grammar and code examples (113,000 SmolLM2 tokens). It is general English about no person,
book or place that a forget set could name, so its keys cannot hold the very directions an edit of the forget
subjects needs, which text sampled from a model that learned those subjects can.
"""

from __future__ import annotations

SOURCE = "python-docs"


def general_sequences(tokenizer, tokens: int, length: int = 512) -> list[list[int]]:
    """Token sequences of at most `length` from the documentation, topic after topic, until `tokens` in all."""
    from pydoc_data.topics import topics

    sequences: list[list[int]] = []
    total = 0
    for name in sorted(topics):
        ids = tokenizer(topics[name], verbose=False)["input_ids"]  # longer than the model's context: it is cut
        for start in range(0, len(ids), length):
            if total >= tokens:
                return sequences
            sequences.append(ids[start:start + length])
            total += len(sequences[-1])
    return sequences
