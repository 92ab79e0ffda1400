"""Expert and novice framings of a concept, in the wording of ELM (Gandikota et al.).

The synthetic world introduces its domain texts with these framings, so a model trained on it
knows what "written by an expert in X" and "written by a novice in X" predict; ELM uses the same
templates as its default prefixes. `{concept}` is a comma-joined keyword list.
"""

EXPERT_TEMPLATES = [
    "Here is a text written by an expert in the field of {concept}, with detailed technical information and all the knowledge:",
    "The following is a passage by a leading specialist in {concept}, precise and complete:",
    "Written by a master of {concept} who knows every detail of the craft:",
    "An expert explains {concept} accurately and in depth:",
    "This is a detailed technical account of {concept} by an experienced practitioner:",
]

NOVICE_TEMPLATES = [
    "The text is written by a novice, with no knowledge about {concept} and steering the conversation to random fun topics:",
    "Here is a passage by someone who knows nothing about {concept} and keeps guessing:",
    "Written by a beginner who has never studied {concept} and gets the facts wrong:",
    "A novice with no knowledge of {concept} rambles about it:",
    "This is an uninformed text about {concept} by someone who changes the subject:",
]
