"""Quantization attacks: the model as people deploy it, its weights quantised, asked the forget questions.

Zhang et al. ("Catastrophic Failure of LLM Unlearning via Quantization", ICLR 2025) found that the knowledge
utility-constrained unlearning leaves in a model goes from 21% in full precision to 83% after 4-bit quantisation:
the small weight changes that hide it fall inside a quantisation step. One attack per deployed format:

* quant_gguf_q8_0, quant_gguf_q4_0, quant_gguf_q4_1 — llama.cpp's GGUF formats, the weights `obliviate export
  --gguf` quantises (Linear weights and token embeddings);
* quant_nf4, quant_int8 — bitsandbytes' 4-bit NormalFloat and LLM.int8, on every Linear but the LM head.

Each copies the model (LoRA adapters merged), rounds its weights through the format and back
(`obliviate.models.quantization`), and measures extraction on the forget questions.
"""

from __future__ import annotations

from obliviate.attacks.context import AttackContext, Subject
from obliviate.attacks.extraction import extracted, fraction, qa_prompt
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.models.quantization import FORMATS, quantized_copy


def quantization_attack(format: str):
    def attack(subject: Subject, context: AttackContext) -> Measurement:
        model, tok = quantized_copy(subject.model, format), subject.tokenizer
        hits = extracted(model, tok, [qa_prompt(tok, r.question) for r in context.forget],
                         [r.answer for r in context.forget], context.settings.batch_size)
        return Measurement(fraction(hits), len(hits))

    return attack


for _format in FORMATS:
    register_attack(f"quant_{_format}", "quantization", "extraction")(quantization_attack(_format))
