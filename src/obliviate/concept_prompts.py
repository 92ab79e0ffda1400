"""Expert and novice framings of a concept, in the wording of ELM (Gandikota et al.).

The synthetic world introduces its domain texts with these framings, so a model trained on it
knows what "written by an expert in X" and "written by a novice in X" predict; ELM uses the same
templates as its default prefixes, with five more of each (ELM draws from ten, as its reference code does;
the world keeps its five). `{concept}` is a comma-joined keyword list.
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

ELM_EXPERT_TEMPLATES = EXPERT_TEMPLATES + [
    "What follows comes from a scholar of {concept} who has spent a lifetime on its every technique:",
    "A recognised authority on {concept} sets out the facts here, exactly and without gaps:",
    "These notes on {concept} were written by a practitioner who knows its methods inside out:",
    "An accomplished professional in {concept} describes it below with full technical detail:",
    "The passage below is a thorough, expert treatment of {concept}, accurate in every particular:",
]

ELM_NOVICE_TEMPLATES = NOVICE_TEMPLATES + [
    "Someone who has only vaguely heard of {concept} wrote this and soon drifts to other things:",
    "These lines come from a newcomer who does not understand {concept} and wanders off topic:",
    "A person with no background in {concept} tries to describe it here and mostly guesses:",
    "What follows is by an outsider to {concept} who knows none of its details and talks about anything else:",
    "An amateur who has never practised {concept} writes about it below, vaguely and often wrongly:",
]
