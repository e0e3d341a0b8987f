import random
import time

from curation.report.diff import MAX_TOKENS, diff_stats, side, tokenize, word_diff


def test_segments_rebuild_both_texts():
    old = "First, I need to visualize the video. At 00:00:15 the red ball rolls left.\nSo the answer is B."
    new = "The video shows the red ball rolling right.\nSo the answer is A."
    segs = word_diff(old, new)
    assert side(segs, "-") == old
    assert side(segs, "+") == new
    assert {op for op, _ in segs} == {"=", "-", "+"}


def test_rewritten_phrase_is_one_edit_not_word_pairs():
    segs = word_diff("The cat sat on the mat.", "A dog ran on the mat.")
    assert segs[:2] == [("-", "The cat sat"), ("+", "A dog ran")]
    assert segs[2] == ("=", " on the mat.")


def test_punctuation_change_stays_small():
    segs = word_diff("the frame.", "the frame,")
    assert ("-", ".") in segs and ("+", ",") in segs


def test_identical_and_empty_texts():
    assert word_diff("same text", "same text") == [("=", "same text")]
    assert word_diff("", "new") == [("+", "new")]
    assert word_diff("old", "") == [("-", "old")]


def test_huge_texts_fall_back_to_replace():
    big = "word " * MAX_TOKENS
    assert word_diff(big, big + "more") == [("-", big), ("+", big + "more")]


def test_stats_and_tokens():
    segs = word_diff("a b c d", "a x c d")
    assert diff_stats(segs) == {"kept": 3, "removed": 1, "added": 1, "kept_ratio": 0.75}
    assert tokenize("hi, you\n") == ["hi", ",", " you", "\n"]


def test_random_texts_round_trip():
    rng = random.Random(7)
    alphabet = ["the", "ball", ".", ",", " ", "  ", "\n", "red", "!", "é", "x1", "\t"]
    for _ in range(300):
        old = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        new = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        segs = word_diff(old, new)
        assert side(segs, "-") == old and side(segs, "+") == new
        assert all(text for _, text in segs)
        assert all(segs[k][0] != segs[k + 1][0] for k in range(len(segs) - 1))


def test_every_sentence_edited_is_still_fast():
    rng = random.Random(1)
    words = "the a red ball cube moves left right then stops near camera shows".split()
    sents = [" ".join(rng.choice(words) for _ in range(14)) + "." for _ in range(40)]
    old = " ".join(sents)
    new = " ".join(s.replace("red", "blue", 1) + " Indeed." for s in sents)
    start = time.perf_counter()
    segs = word_diff(old, new)
    assert time.perf_counter() - start < 0.5
    assert side(segs, "+") == new
