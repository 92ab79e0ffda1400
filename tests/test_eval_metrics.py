"""Every evaluation metric against an independent computation on a hand-made case."""

import math
import random
import zlib

import pytest
import torch
from rouge_score import rouge_scorer
from scipy import stats

from obliviate.eval import metrics
from obliviate.eval.scoring import SequenceScore, _score_positions


def sequence(logprobs, correct=None, ends_with_eos=False):
    """A SequenceScore with the given per-token log-probabilities (and argmax hits, default all)."""
    n = len(logprobs)
    return SequenceScore(
        token_ids=torch.zeros(n, dtype=torch.long),
        logprobs=torch.tensor(logprobs, dtype=torch.float),
        argmax_correct=torch.tensor(correct if correct is not None else [True] * n),
        vocab_logprob_mean=torch.zeros(n),
        vocab_logprob_std=torch.ones(n),
        ends_with_eos=ends_with_eos,
    )


def of_probabilities(*token_probabilities):
    return sequence([math.log(p) for p in token_probabilities])


def test_probability_is_the_per_token_geometric_mean():
    assert metrics.probability(sequence([-1.0, -2.0, -3.0])) == pytest.approx(math.exp(-2.0))
    assert metrics.probability(of_probabilities(0.1, 0.4)) == pytest.approx(0.2)


def test_normalised_probability():
    correct, wrong = of_probabilities(0.5), [of_probabilities(0.25), of_probabilities(0.1, 0.4)]
    assert metrics.normalised_probability(correct, wrong) == pytest.approx(0.5 / (0.5 + 0.25 + 0.2))


def test_truth_ratio_averages_the_perturbed_answers_geometrically_as_tofus_code_does():
    paraphrased = of_probabilities(0.5, 0.5)  # per-token probability 0.5
    perturbed = [of_probabilities(0.25), of_probabilities(0.1, 0.4)]  # 0.25 and 0.2
    ratio = metrics.truth_ratio(paraphrased, perturbed)
    assert ratio == pytest.approx(math.sqrt(0.25 * 0.2) / 0.5)  # 0.4472, where the arithmetic mean gives 0.45
    # open-unlearning: wrong_prob = exp(-mean of the perturbed answers' avg_loss), correct_prob = exp(-avg_loss)
    wrong_avg_losses, correct_avg_loss = [-math.log(0.25), -(math.log(0.1) + math.log(0.4)) / 2], -math.log(0.5)
    assert ratio == pytest.approx(math.exp(-sum(wrong_avg_losses) / 2) / math.exp(-correct_avg_loss))


def test_forget_and_retain_forms_of_the_truth_ratio():
    assert metrics.forget_truth_ratio([0.45, 2.0]) == pytest.approx((0.45 + 0.5) / 2)
    assert metrics.retain_truth_ratio([0.45, 2.0]) == pytest.approx((0.55 + 0.0) / 2)


def open_unlearning_extraction_strength(correct: list[bool]) -> float:
    """open-unlearning's loop over k, on argmax hits (its labels exclude the closing EOS)."""
    n = len(correct)
    for k in range(n):
        if all(correct[k:]):
            break
    return 1 - k / n


@pytest.mark.parametrize("correct", [[True, False, True, True], [False, True, True, True], [True] * 4,
                                     [True, True, True, False], [False] * 4, [False], [True]])
def test_exact_memorisation_and_extraction_strength_as_open_unlearning_computes_them(correct):
    answer = sequence([-1.0] * len(correct), correct)
    assert metrics.exact_memorisation(answer) == pytest.approx(sum(correct) / len(correct))
    assert metrics.extraction_strength(answer) == pytest.approx(open_unlearning_extraction_strength(correct))
    # the encoding's closing EOS is not counted, right or wrong
    for eos_correct in (True, False):
        with_eos = sequence([-1.0] * (len(correct) + 1), correct + [eos_correct], ends_with_eos=True)
        assert metrics.exact_memorisation(with_eos) == metrics.exact_memorisation(answer)
        assert metrics.extraction_strength(with_eos) == metrics.extraction_strength(answer)


def test_extraction_strength_by_hand():
    assert metrics.extraction_strength(sequence([-1.0] * 4, [True, False, True, True])) == 0.5  # 1 − 2/4
    assert metrics.extraction_strength(sequence([-1.0] * 4, [True, True, True, False])) == 0.25  # k stops at 3: 1/4


def test_knowundo_accuracy_and_perplexity_average_per_sample():
    a = sequence([-1.0, -3.0], correct=[True, False])
    b = sequence([-0.5, -0.5, -1.0], correct=[True, True, True])
    assert metrics.token_accuracy(a) == 0.5 and metrics.token_accuracy(b) == 1.0  # KnowUnDo: (0.5 + 1) / 2, not 4/5
    assert metrics.sample_perplexity([a, b]) == pytest.approx(math.exp((2.0 + 2 / 3) / 2))
    assert metrics.perplexity([a, b]) == pytest.approx(math.exp((1 + 3 + 0.5 + 0.5 + 1) / 5))  # pooled (reverse ppl)


def test_loss_zlib_and_min_k_scores_are_higher_for_members():
    s = sequence([-0.1, -5.0, -0.2, -3.0, -0.3, -0.4, -2.0, -0.5, -0.6, -1.0])
    assert metrics.mia_loss(s) == pytest.approx(-13.1 / 10)
    text = "a text to compress, a text to compress"
    assert metrics.mia_zlib(s, text) == pytest.approx(-1.31 / len(zlib.compress(text.encode())))
    assert metrics.mia_min_k(s) == pytest.approx((-5.0 - 3.0 - 2.0 - 1.0) / 4)  # lowest 40% of 10 tokens
    assert metrics.mia_loss(sequence([-0.1, -0.2])) > metrics.mia_loss(sequence([-3.0, -4.0]))


def test_min_k_plus_plus_by_hand_from_logits():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 7) * 2, torch.tensor([0, 3, 6, 2, 1])
    by_hand = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_z = math.log(sum(math.exp(x) for x in row))
        logp = [x - log_z for x in row]
        mu = sum(math.exp(lp) * lp for lp in logp)
        sigma = math.sqrt(sum(math.exp(lp) * (lp - mu) ** 2 for lp in logp))
        by_hand.append((logp[label] - mu) / sigma)
    expected = sum(sorted(by_hand)[:2]) / 2  # 40% of 5 tokens
    assert metrics.mia_min_k_plus_plus(SequenceScore(*_score_positions(logits, labels))) == pytest.approx(expected, rel=1e-5)


def test_auc_matches_the_pairwise_rank_computation_with_ties():
    rng = random.Random(0)
    members = [rng.randint(0, 5) for _ in range(23)]
    non_members = [rng.randint(0, 4) for _ in range(17)]
    pairwise = sum((m > n) + 0.5 * (m == n) for m in members for n in non_members) / (23 * 17)
    assert metrics.auc(members, non_members) == pytest.approx(pairwise)
    assert metrics.auc([3, 4], [1, 2]) == 1.0 and metrics.auc([1, 2], [3, 4]) == 0.0
    assert metrics.auc([1, 1], [1, 1]) == 0.5


def test_privleak_as_muse_and_open_unlearning_compute_it():
    auc_unlearned, auc_retain = 0.75, 0.6  # this module's orientation: P(forget sample looks more member-like)
    # open-unlearning's privleak: score, ref = 1 − AUC; (score − ref) / ref · 100
    score, ref = 1 - auc_unlearned, 1 - auc_retain
    assert metrics.privleak(auc_unlearned, auc_retain) == pytest.approx((score - ref) / ref * 100)  # −37.5
    assert metrics.privleak(auc_unlearned, auc_retain) == pytest.approx(-37.5)  # under-unlearned: negative
    assert metrics.privleak(0.4, 0.6) == pytest.approx(50.0)  # over-unlearned: positive
    assert metrics.privleak(0.5, 0.5) == 0.0
    assert math.isnan(metrics.privleak(0.3, 1.0))


def test_forget_quality_is_the_ks_p_value():
    rng = random.Random(1)
    a, b = [rng.random() for _ in range(30)], [rng.random() ** 2 for _ in range(40)]
    assert metrics.forget_quality(a, b) == pytest.approx(stats.ks_2samp(a, b).pvalue)
    assert metrics.forget_quality(a, a) == pytest.approx(1.0)


def test_harmonic_mean():
    values = [0.2, 0.5, 0.9, 0.4]
    assert metrics.harmonic_mean(values) == pytest.approx(stats.hmean(values))
    assert metrics.harmonic_mean(values) == pytest.approx(4 / (5 + 2 + 1 / 0.9 + 2.5))
    assert metrics.harmonic_mean([0.5, 0.0]) == 0.0


def test_rouge_l_recall():
    assert metrics.rouge_l_recall("the cat on mat", "the cat sat on the mat") == pytest.approx(4 / 6)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    generation, reference = "He was writing novels in Paris", "She writes novels in Paris, France"
    assert metrics.rouge_l_recall(generation, reference) == scorer.score(reference, generation)["rougeL"].recall
    assert metrics.rouge_l_recall("writing", "writes") == 1.0  # stemmed


def test_refusal_rate():
    assert metrics.refusal_rate(["I don't know.", "Paris", "I'm not sure.", "1967"]) == 0.5


def test_ngram_entropy_by_hand():
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))  # bigrams ab, ba, ab
    h3 = 1.0  # trigrams aba, bab
    assert metrics.ngram_entropy("a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * h3) / 2)
    assert metrics.ngram_entropy("the the the the the the") == 0.0
    assert metrics.mean_ngram_entropy(["a b a b", "the the the"]) == pytest.approx(metrics.ngram_entropy("a b a b") / 2)


def test_exact_match_rate_is_the_share_of_generations_giving_their_answer():
    generations = ["Paris.", " lyon", "I do not know."]
    assert metrics.exact_match_rate(generations, ["Paris", "Lyon", "Nice"]) == pytest.approx(2 / 3)
    assert math.isnan(metrics.exact_match_rate([], []))
    assert metrics.exact_match_rate([], [], empty=0.0) == 0.0


def test_multiple_choice_scores_each_choice_without_the_closing_eos_and_normalises_by_characters():
    from obliviate.data import MCQRecord
    from obliviate.eval.mcq import mcq_results

    record = MCQRecord(question="Which?", choices=["no", "a longer choice"], answer=1)
    short, long = sequence([-1.0, -9.0], ends_with_eos=True), sequence([-1.5, -1.0, -0.5, -0.1], ends_with_eos=True)
    (result,) = mcq_results([record], [short, long])
    assert result.loglik == pytest.approx([-1.0, -3.0])  # the EOS's −9 and −0.1 are not counted
    assert result.predicted == 0  # lm-eval's acc: the higher summed log-likelihood
    assert result.predicted_norm == 1  # lm-eval's acc_norm: −1/2 per character against −3/15


def test_the_scoring_pass_marks_the_encodings_closing_eos(test_model):
    from obliviate.eval.scoring import score_answers

    model, tokenizer = test_model
    (closed,) = score_answers(model, tokenizer, [("Where is it?", "In the north")])
    (cut,) = score_answers(model, tokenizer, [("Where is it?", "In the north")], max_length=8)
    assert closed.ends_with_eos and int(closed.token_ids[-1]) == tokenizer.eos_token_id
    assert torch.equal(closed.without_eos().token_ids, closed.token_ids[:-1])
    assert not cut.ends_with_eos and cut.without_eos() is cut  # truncated before its EOS


def test_scores_do_not_depend_on_batching_or_on_how_positions_are_chunked(test_model, monkeypatch):
    from obliviate.eval import scoring

    model, tokenizer = test_model
    pairs = [("Where is it?", "In the north"), ("Who wrote it?", "A poet from the coast, long ago"), ("Why?", "No")]
    one_by_one = [scoring.score_answers(model, tokenizer, [pair])[0] for pair in pairs]
    monkeypatch.setattr(scoring, "POSITION_CHUNK_ELEMENTS", 3 * len(tokenizer))  # 3 positions at a time
    batched = scoring.score_answers(model, tokenizer, pairs, batch_size=3)
    for alone, together in zip(one_by_one, batched):
        assert torch.equal(alone.token_ids, together.token_ids) and alone.ends_with_eos == together.ends_with_eos
        for column in ("logprobs", "vocab_logprob_mean", "vocab_logprob_std"):
            assert torch.allclose(getattr(alone, column), getattr(together, column), atol=1e-5)


def test_answers_scored_on_a_shared_prompt_equal_the_whole_sequence_scored_at_once(test_model):
    from obliviate.eval import scoring
    from obliviate.prompts import encode_qa

    model, tokenizer = test_model
    assert scoring.shares_prompts(model)
    pairs = [(question, answer) for question in ("Where is it?", "Who wrote the long book about the river?")
             for answer in ("In the north", "No", "A poet from the coast, long ago", "")]
    pairs.append(("Where is it?" * 30, "Cut"))  # the prompt alone fills max_length: nothing left to score
    encoded = [encode_qa(tokenizer, q, a, 64) for q, a in pairs]
    whole = scoring.score_encoded(model, encoded, batch_size=3, eos_id=tokenizer.eos_token_id)
    shared = scoring.score_with_shared_prompts(model, encoded, batch_size=3, eos_id=tokenizer.eos_token_id)
    assert whole[-1].n_tokens == 0 and shared[-1].n_tokens == 0
    for at_once, on_prompt in zip(whole, shared):
        assert torch.equal(at_once.token_ids, on_prompt.token_ids) and at_once.ends_with_eos == on_prompt.ends_with_eos
        assert torch.equal(at_once.argmax_correct, on_prompt.argmax_correct)
        for column in ("logprobs", "vocab_logprob_mean", "vocab_logprob_std"):
            assert torch.allclose(getattr(at_once, column), getattr(on_prompt, column), atol=1e-4)
