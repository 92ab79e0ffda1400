"""Neutral prompts: generic requests about no particular person, work or fact, for fluency without any world data.

A pretrained model unlearning a topic should still write ordinary text; these prompts ask for it.
`obliviate eval --suite fluency --data prompts=neutral` uses them, as does the fluency suite by
default when no synthetic world is given or recorded.
"""

from __future__ import annotations

NEUTRAL_PROMPTS: tuple[str, ...] = (
    "Write two sentences about the weather in spring.",
    "Describe a quiet morning in a small town.",
    "Give three tips for keeping a kitchen tidy.",
    "Explain why people enjoy walking in the park.",
    "Write a short note thanking a neighbour for their help.",
    "Describe the sound of rain on a window.",
    "Suggest a simple recipe for a vegetable soup.",
    "Write two sentences about a cat sleeping in the sun.",
    "Explain how to plan a day trip to the beach.",
    "Describe what a busy market looks like.",
    "Write a short paragraph about the value of friendship.",
    "Give advice to someone starting to learn how to cook.",
    "Describe the colours of the sky at sunset.",
    "Write two sentences about riding a bicycle.",
    "Explain why sleep is important for health.",
    "Describe a walk through a forest in autumn.",
    "Write a short message inviting friends to a picnic.",
    "Give three reasons to read books.",
    "Describe how to make a cup of tea.",
    "Write two sentences about the first snow of winter.",
)
NEUTRAL = "neutral"  # the --data prompts= value that selects them
