"""How a question and an answer become tokens: one format shared by training, scoring and generation.

Models with a chat template get the question as a user turn; others (the embedded tiny model,
GPT-2…) get the plain "Question: …\\nAnswer:" format. The answer is scored and trained after
the prompt, followed by the end-of-sequence token; prompt positions carry label -100. After
"Answer:" the answer begins with a space; an assistant turn begins on its own line, so there
it begins with no space, as the chat template writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

PLAIN_TEMPLATE = "Question: {question}\nAnswer:"
IGNORE_INDEX = -100


def uses_chat_template(tokenizer, use_chat_template: bool | None = None) -> bool:
    """Whether a prompt is a chat turn: `use_chat_template=None` means: if the tokenizer has a template."""
    return bool(getattr(tokenizer, "chat_template", None)) if use_chat_template is None else use_chat_template


def prompt_text(tokenizer, question: str, use_chat_template: bool | None = None) -> str:
    """The text a model is given before its answer. `use_chat_template=None` means: if it has one."""
    if uses_chat_template(tokenizer, use_chat_template):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_TEMPLATE.format(question=question)


def prompt_ids(tokenizer, question: str, use_chat_template: bool | None = None) -> list[int]:
    text = prompt_text(tokenizer, question, use_chat_template)
    # A chat template already carries the BOS token it wants.
    add_special = not uses_chat_template(tokenizer, use_chat_template)
    return tokenizer(text, add_special_tokens=add_special)["input_ids"]


def formatted_prompt_ids(tokenizer, question: str, context: str = "", lead: str = "",
                         use_chat_template: bool | None = None) -> list[int]:
    """Raw `context` text (with the BOS token), the question in the QA format, then `lead`: text put in
    the answer's mouth. With neither it is `prompt_ids`. Training on formatted QA and the attacks that
    ask in those formats tokenize through here, so both see the same ids."""
    if context:
        ids = tokenizer(context, add_special_tokens=True)["input_ids"]
        ids += tokenizer(prompt_text(tokenizer, question, use_chat_template), add_special_tokens=False)["input_ids"]
    else:
        ids = prompt_ids(tokenizer, question, use_chat_template)
    space = "" if uses_chat_template(tokenizer, use_chat_template) else " "
    return ids + tokenizer(space + lead, add_special_tokens=False)["input_ids"] if lead else ids


def answer_ids(tokenizer, answer: str, add_eos: bool = True, space: bool = True) -> list[int]:
    """The answer's tokens, after a space unless `space=False` (an answer that begins an assistant turn)."""
    ids = tokenizer((" " if space else "") + answer.strip(), add_special_tokens=False)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def continuation_ids(tokenizer, prompt: list[int], answer: str) -> list[int]:
    """The answer's tokens (no EOS) as they follow `prompt`: after a space, unless the prompt already ends in
    whitespace, as a chat template's assistant turn does ("<|im_start|>assistant\n"). This is how `encode_qa`
    tokenizes what the model was trained on, so a greedy continuation can reproduce it token for token."""
    ends_in_whitespace = bool(prompt) and tokenizer.decode(prompt[-1:])[-1:].isspace()
    return answer_ids(tokenizer, answer, add_eos=False, space=not ends_in_whitespace)


@dataclass
class EncodedQA:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on prompt positions

    @property
    def prompt_length(self) -> int:
        return sum(1 for label in self.labels if label == IGNORE_INDEX)


def encode_qa(tokenizer, question: str, answer: str, max_length: int = 512,
              use_chat_template: bool | None = None, context: str = "", lead: str = "") -> EncodedQA:
    """Prompt + answer tokens, labels only on the answer (and its EOS); truncated from the answer's end.
    `context` and `lead` wrap the question as `formatted_prompt_ids` does."""
    p = formatted_prompt_ids(tokenizer, question, context, lead, use_chat_template)
    a = answer_ids(tokenizer, answer, space=bool(lead) or not uses_chat_template(tokenizer, use_chat_template))
    ids = (p + a)[:max_length]
    labels = ([IGNORE_INDEX] * len(p) + a)[:max_length]
    return EncodedQA(ids, labels)


def clean_generation(text: str) -> str:
    """A generated answer up to its first line break, trimmed."""
    return text.split("\n", 1)[0].strip()


def normalize_answer(text: str) -> str:
    return " ".join(text.strip().rstrip(".").split()).lower()


def answers_match(generated: str, reference: str) -> bool:
    """Exact match after trimming, case folding and dropping a final full stop."""
    return normalize_answer(clean_generation(generated)) == normalize_answer(reference)
