"""The training stream (data.StepSchedule) over several epochs: every sample exactly once per
epoch, packs reshuffled with the seed, a fixed number of items per epoch, resume at any position."""
import collections
import random

import pytest

from sft_playbook.sft import data as D


def fake_examples(n, lengths, seed=0):
    """n examples whose lengths are drawn from `lengths` (a (lo, hi) range or a list to cycle)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        n_tok = rng.randint(*lengths) if isinstance(lengths, tuple) else lengths[i % len(lengths)]
        out.append({"id": f"e{i}", "input_ids": [7] * n_tok, "targets": [D.IGNORE] * n_tok})
    return out


CASES = [  # n, lengths, seq_len, items per step, strategy
    (100, (108, 334), 700, 2, "next_fit"),
    (100, (108, 334), 700, 2, "best_fit"),
    (37, (5, 60), 64, 3, "next_fit"),
    (257, (1, 500), 512, 4, "best_fit"),
    (600, (10, 300), 1000, 8, "best_fit"),   # more than one best_fit window
    (50, [300, 300, 20], 640, 1, "next_fit"),
]


@pytest.mark.parametrize("n,lengths,seq_len,per_step,strategy", CASES)
def test_every_sample_exactly_once_in_every_epoch(n, lengths, seq_len, per_step, strategy):
    exs = fake_examples(n, lengths)
    s = D.StepSchedule(exs, 42, per_step, True, seq_len, strategy)
    ipe = s.items_per_epoch
    for e in range(5):
        packs = s._epoch(e)
        assert len(packs) == ipe, (e, len(packs), ipe)
        assert all(sum(len(x["input_ids"]) for x in p) <= seq_len for p in packs)
        # through the public stream: positions e*ipe .. (e+1)*ipe, as the steps take them
        seen = collections.Counter(x["id"] for it in s.items_at(e * ipe, ipe) for x in it)
        assert sorted(seen) == sorted(x["id"] for x in exs) and set(seen.values()) == {1}, e
    # and by whole steps: epoch e ends where epoch_at says it does
    seen = collections.Counter()
    step = 0
    while s.epoch_of(step + 1) <= 3:
        for it in s.items(step):
            for x in it:
                seen[x["id"]] += 1
        step += 1
    assert step * per_step == 3 * ipe or s.epoch_of(step) < 3
    full = int(s.epoch_of(step))
    assert all(c >= full for c in seen.values())


@pytest.mark.parametrize("n,lengths,seq_len,per_step,strategy", CASES)
def test_packs_are_shuffled_anew_each_epoch(n, lengths, seq_len, per_step, strategy):
    exs = fake_examples(n, lengths, seed=3)
    s = D.StepSchedule(exs, 42, per_step, True, seq_len, strategy)
    e0 = [tuple(x["id"] for x in p) for p in s._epoch(0)]
    e1 = [tuple(x["id"] for x in p) for p in s._epoch(1)]
    same_position = sum(a == b for a, b in zip(e0, e1))
    assert same_position <= max(2, len(e0) // 10), (same_position, len(e0))
    # best_fit sorts inside its windows: the training order must not follow length
    longest = [(max(len(x["input_ids"]) for x in p), -len(p)) for p in s._epoch(1)]
    assert longest != sorted(longest, reverse=True)
    falls = sum(a > b for a, b in zip(longest, longest[1:]))
    rises = sum(a < b for a, b in zip(longest, longest[1:]))
    assert rises >= 0.25 * (falls + rises), (rises, falls)
    # reproducible from the seed, and another seed gives another order
    again = D.StepSchedule(exs, 42, per_step, True, seq_len, strategy)
    assert [tuple(x["id"] for x in p) for p in again._epoch(1)] == e1
    other = D.StepSchedule(exs, 43, per_step, True, seq_len, strategy)
    assert [tuple(x["id"] for x in p) for p in other._epoch(1)] != e1


def test_unpacked_stream_is_the_shuffled_examples_each_epoch():
    exs = fake_examples(18, (5, 9))
    s = D.StepSchedule(exs, 42, 4, False, 64)
    assert s.items_per_epoch == 18
    for e in range(3):
        ids = [it[0]["id"] for it in s.items_at(e * 18, 18)]
        assert sorted(ids) == sorted(x["id"] for x in exs)
    assert s.epoch_of(2) == pytest.approx(8 / 18)


def test_a_later_epoch_that_packs_worse_still_has_every_sample_once(monkeypatch):
    """No reshuffle allowed: an epoch that packs into more packs than epoch 0 falls back to epoch 0's
    grouping; one that packs into fewer is split. Either way: same count, each sample once."""
    monkeypatch.setattr(D, "REPACK_TRIES", 0)
    exs = fake_examples(60, [300, 300, 20, 150, 90], seed=1)
    s = D.StepSchedule(exs, 5, 2, True, 620, "next_fit")
    raw = [len(D.pack_examples(D._shuffled(exs, random.Random(5 * 1_000_003 + e)), 620)) for e in range(12)]
    assert max(raw) > s.items_per_epoch or min(raw) < s.items_per_epoch  # the fix-ups really ran
    for e in range(12):
        packs = s._epoch(e)
        assert len(packs) == s.items_per_epoch
        ids = [x["id"] for p in packs for x in p]
        assert sorted(ids) == sorted(x["id"] for x in exs)


def test_stream_does_not_depend_on_the_batch_size():
    """Resume with another global batch: the items after position p are the same whatever G is."""
    exs = fake_examples(40, (20, 200))
    a = D.StepSchedule(exs, 1, 4, True, 400, "best_fit")
    b = D.StepSchedule(exs, 1, 8, True, 400, "best_fit")
    ids = lambda items: [tuple(x["id"] for x in it) for it in items]  # noqa: E731
    assert ids(a.items(0) + a.items(1)) == ids(b.items(0))
    assert ids(a.items_at(8, 30)) == ids(b.items_at(8, 30))
    assert a.epoch_at(a.items_per_epoch + 3) == pytest.approx(1 + 3 / a.items_per_epoch)


def test_packing_when_no_two_samples_fit_together():
    exs = fake_examples(24, (70, 120))
    s = D.StepSchedule(exs, 42, 4, True, 128, "next_fit")
    assert s.items_per_epoch == 24
    for e in range(3):
        assert sorted(x["id"] for p in s._epoch(e) for x in p) == sorted(x["id"] for x in exs)
