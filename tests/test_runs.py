"""runs: one network trained on a task, against hand-written loops and exact counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import runs
from throughtime.gates import effective_forget_bias, gate_rows
from throughtime.runs import (
    RunResult,
    SequenceModel,
    make_model,
    run_seeds,
    score_on_task,
    summarize,
    train_on_task,
)
from throughtime.tasks import AGREEMENT_VOCABULARY, adding_problem, agreement_task

KINDS = ("rnn", "lstm", "gru")  # the chapters' spelling; measure.KINDS's is accepted too
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SINGULAR = set(AGREEMENT_VOCABULARY.singular)
PLURAL = set(AGREEMENT_VOCABULARY.plural)


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_models_have_the_right_shapes_and_parameter_counts(kind):
    adder = make_model(kind, "adding", hidden_size=5)
    assert adder(torch.randn(7, 3, 2)).shape == (3, 1)
    reader = make_model(kind, "agreement", hidden_size=5, embedding_size=4)
    tokens = torch.randint(0, AGREEMENT_VOCABULARY.size, (6, 3))
    assert reader(tokens).shape == (3, 2)
    H, I = 5, 2
    count = sum(p.numel() for p in adder.recurrent.parameters())
    assert count == GATES[kind] * (H * I + H * H + 2 * H)
    assert isinstance(adder.recurrent, {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind])


def test_model_reads_out_the_last_state():
    torch.manual_seed(0)
    model = SequenceModel("gru", 2, 4, 1)
    inputs = torch.randn(5, 3, 2)
    states, _ = model.recurrent(inputs)
    torch.testing.assert_close(model(inputs), model.readout(states[-1]))


def test_lstm_forget_bias_is_set_or_left_alone():
    model = make_model("lstm", "adding", hidden_size=6)
    torch.testing.assert_close(effective_forget_bias(model.recurrent), torch.ones(6))
    torch.manual_seed(3)
    untouched = make_model("lstm", "adding", hidden_size=6, forget_bias=None)
    torch.manual_seed(3)
    reference = nn.LSTM(2, 6)
    torch.testing.assert_close(untouched.recurrent.bias_ih_l0, reference.bias_ih_l0)


def test_gru_update_bias_is_set_or_left_alone():
    torch.manual_seed(4)
    biased = make_model("gru", "agreement", hidden_size=5, update_bias=1.0)
    z = gate_rows("GRU", "z", 5)
    torch.testing.assert_close(biased.recurrent.bias_ih_l0[z], torch.ones(5))
    torch.testing.assert_close(biased.recurrent.bias_hh_l0[z], torch.zeros(5))
    torch.manual_seed(4)
    default = make_model("gru", "agreement", hidden_size=5)
    torch.manual_seed(4)
    reference = make_model("gru", "agreement", hidden_size=5, forget_bias=3.0)  # LSTM only
    torch.testing.assert_close(default.recurrent.bias_ih_l0, reference.recurrent.bias_ih_l0)
    r, n = gate_rows("GRU", "r", 5), gate_rows("GRU", "n", 5)
    torch.testing.assert_close(biased.recurrent.bias_ih_l0[r], default.recurrent.bias_ih_l0[r])
    torch.testing.assert_close(biased.recurrent.bias_hh_l0[n], default.recurrent.bias_hh_l0[n])
    lstm = make_model("lstm", "adding", hidden_size=5, update_bias=2.0)  # GRU only
    torch.testing.assert_close(effective_forget_bias(lstm.recurrent), torch.ones(5))


# --------------------------------------------------------------------------------------
# Agreement without a shortcut
# --------------------------------------------------------------------------------------


def _number(token: int) -> int | None:
    return 0 if token in SINGULAR else 1 if token in PLURAL else None


@pytest.mark.parametrize("distance, share, nouns", [(10, 0.5, 5), (11, 0.5, 5), (8, 0.0, 0),
                                                     (8, 1.0, 8), (9, 0.25, 2)])
def test_distractor_share_sets_the_number_of_nouns(distance, share, nouns):
    tokens, _ = runs._agreement_batch(distance, 50, 3, None, share)
    counts = [sum(_number(t) is not None for t in column) for column in tokens.numpy()[1:-1].T]
    assert counts == [nouns] * 50
    if share == 0.5:  # the default is half of the distance, rounded down: the same batch
        default, _ = runs._agreement_batch(distance, 50, 3, None, None)
        assert torch.equal(tokens, default)


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------


def hand_written_adding_run(kind, seed, length, steps, lr, max_norm, batch_size, test_size,
                            test_seed, hidden_size):
    """The adding experiment written out: Adam, clipping by global norm, fresh batches."""
    torch.manual_seed(seed)
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](2, hidden_size)
    if kind == "lstm":
        with torch.no_grad():
            rnn.bias_ih_l0[hidden_size:2 * hidden_size] = 1.0
            rnn.bias_hh_l0[hidden_size:2 * hidden_size] = 0.0
    readout = nn.Linear(hidden_size, 1)
    parameters = list(rnn.parameters()) + list(readout.parameters())
    optimizer = torch.optim.Adam(parameters, lr=lr)
    test_x, test_y = adding_problem(length, test_size, np.random.default_rng(test_seed),
                                    as_torch=True)
    rng = np.random.default_rng([seed, 1])
    for _ in range(steps):
        x, y = adding_problem(length, batch_size, rng, as_torch=True)
        optimizer.zero_grad()
        loss = ((readout(rnn(x)[0][-1]) - y) ** 2).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, max_norm)
        optimizer.step()
    with torch.no_grad():
        return float(((readout(rnn(test_x)[0][-1]) - test_y) ** 2).mean())


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_train_on_task_is_the_hand_written_experiment(kind):
    settings = {"length": 6, "steps": 12, "lr": 0.02, "max_norm": 0.5, "batch_size": 8,
                "test_size": 32, "test_seed": 4, "hidden_size": 5}
    result = train_on_task(kind, "adding", seed=2, evaluate_every=12, stop_when_solved=False,
                           solved_mse=1e-9, device="cpu", **settings)
    expected = hand_written_adding_run(kind, 2, **settings)
    assert result.steps == [12]
    assert math.isclose(result.final, expected, rel_tol=1e-5, abs_tol=1e-7)


def test_runs_are_reproducible_and_keep_their_bookkeeping():
    kwargs = {"length": 5, "steps": 30, "evaluate_every": 10, "test_size": 64, "hidden_size": 4,
              "device": "cpu", "stop_when_solved": False}
    first = train_on_task("gru", "adding", seed=1, **kwargs)
    second = train_on_task("gru", "adding", seed=1, **kwargs)
    assert first.metric == second.metric
    assert first.steps == [10, 20, 30] and len(first.metric) == 3
    assert first.parameters == 3 * (4 * 2 + 16 + 8)
    assert first.settings["length"] == 5 and first.settings["lr"] == 0.02
    assert first.seconds > 0 and not first.model.training
    assert next(first.model.parameters()).device.type == "cpu"


def test_a_run_stops_when_solved_and_records_the_step():
    result = train_on_task("gru", "agreement", length=2, steps=400, evaluate_every=20,
                           hidden_size=8, test_size=200, device="cpu", seed=0)
    assert result.solved and result.solved_at == result.steps[-1] < 400
    assert result.final >= 0.99
    never = train_on_task("rnn", "adding", length=5, steps=20, evaluate_every=10,
                          hidden_size=4, test_size=64, solved_mse=1e-12, device="cpu")
    assert not never.solved and never.solved_at is None and never.steps == [10, 20]


def test_agreement_trains_on_mixed_distances_and_tests_at_length():
    result = train_on_task("lstm", "agreement", length=6, min_length=1, steps=10,
                           evaluate_every=10, hidden_size=4, test_size=16, device="cpu",
                           stop_when_solved=False)
    assert result.settings["min_length"] == 1 and result.steps == [10]
    assert 0.0 <= result.final <= 1.0


def test_score_on_task_is_the_metric_on_a_fresh_test_set():
    run = train_on_task("lstm", "agreement", length=4, steps=5, evaluate_every=5, hidden_size=4,
                        test_size=64, test_seed=8, device="cpu", stop_when_solved=False)
    # At the training length and with the run's test seed it is the run's own last score.
    assert score_on_task(run.model, "agreement", 4, test_size=64, test_seed=8) == run.final
    tokens, labels = agreement_task(7, 30, np.random.default_rng(2), attractors=0,
                                    attractor_number="random", as_torch=True)
    with torch.no_grad():
        expected = (run.model(tokens).argmax(dim=1) == labels).float().mean().item()
    assert score_on_task(run.model, "agreement", 7, test_size=30, test_seed=2,
                         distractor_share=0.0) == expected
    adder = make_model("gru", "adding", hidden_size=3)
    x, y = adding_problem(9, 20, np.random.default_rng(5), as_torch=True)
    with torch.no_grad():
        mse = ((adder(x) - y) ** 2).mean().item()
    assert score_on_task(adder, "adding", 9, test_size=20, test_seed=5) == pytest.approx(mse)


def test_train_on_task_with_update_bias_and_distractor_share_records_them():
    result = train_on_task("gru", "agreement", length=6, min_length=2, steps=4, evaluate_every=4,
                           hidden_size=4, test_size=8, device="cpu", update_bias=1.0,
                           distractor_share=0.0, stop_when_solved=False)
    assert result.settings["update_bias"] == 1.0 and result.settings["distractor_share"] == 0.0


# --------------------------------------------------------------------------------------
# Several runs
# --------------------------------------------------------------------------------------


def fake_run(kind, seed, solved_at, final):
    return RunResult(kind=kind, task="adding", seed=seed, settings={}, steps=[25, 50],
                     metric=[0.2, final], solved_at=solved_at)


def test_summarize_counts_and_averages():
    runs = {("gru", 0): fake_run("gru", 0, 50, 0.005), ("gru", 1): fake_run("gru", 1, 100, 0.007),
            ("rnn", 0): fake_run("rnn", 0, None, 0.17), ("rnn", 1): fake_run("rnn", 1, None, 0.19)}
    summary = summarize(runs)
    assert list(summary) == ["gru", "rnn"]
    assert summary["gru"]["solved"] == 2 and summary["gru"]["steps_mean"] == 75.0
    assert summary["gru"]["steps_min"] == 50.0 and summary["gru"]["steps_max"] == 100.0
    assert summary["rnn"]["solved"] == 0 and math.isnan(summary["rnn"]["steps_mean"])
    assert summary["rnn"]["solved_at"] == [None, None]
    assert math.isclose(summary["rnn"]["final_mean"], 0.18)
    assert math.isclose(summary["rnn"]["final_std"], np.std([0.17, 0.19]))
    from_list = summarize(list(runs.values()))
    assert from_list["gru"] == summary["gru"]
    assert from_list["rnn"]["final"] == summary["rnn"]["final"]


def test_run_seeds_covers_every_kind_and_seed():
    results = run_seeds(["rnn", "gru"], [0, 1], "adding", length=4, steps=5,
                        evaluate_every=5, hidden_size=3, test_size=8, device="cpu")
    assert list(results) == [("RNN", 0), ("RNN", 1), ("GRU", 0), ("GRU", 1)]  # one spelling
    assert all(run.kind == kind and run.seed == seed for (kind, seed), run in results.items())


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, match", [
    (lambda: make_model("transformer", "adding"), ValueError, "kind must be one of"),
    (lambda: make_model("gru", "copy"), ValueError, "task must be one of"),
    (lambda: train_on_task("gru", "adding", length=1), ValueError, "length must be"),
    (lambda: train_on_task("gru", "adding", length=5, distractors=2), ValueError,
     "apply to task='agreement' only"),
    (lambda: train_on_task("gru", "agreement", length=5, min_length=6), ValueError,
     "min_length must be at most length=5"),
    (lambda: train_on_task("gru", "adding", length=5, lr=0), ValueError, "lr must be positive"),
    (lambda: train_on_task("gru", "adding", length=5, stop_when_solved=1), TypeError,
     "stop_when_solved must be True or False"),
    (lambda: run_seeds([], [0], "adding", length=5), ValueError, "must not be empty"),
    (lambda: summarize([1, 2]), TypeError, "RunResult"),
    (lambda: score_on_task(nn.Linear(2, 1), "agreement", 4, distractors=1,
                           distractor_share=0.5), ValueError, "not both"),
    (lambda: score_on_task(nn.Linear(2, 1), "agreement", 4, distractor_share=1.5), ValueError,
     r"distractor_share must be in \[0, 1\]"),
    (lambda: train_on_task("gru", "adding", length=5, distractor_share=0.5), ValueError,
     "apply to task='agreement' only"),
    (lambda: train_on_task("gru", "agreement", length=5, distractors=1, distractor_share=0.5),
     ValueError, "not both"),
    (lambda: score_on_task("model", "adding", 5), TypeError, "model must be a torch.nn.Module"),
    (lambda: score_on_task(nn.Linear(2, 1), "adding", 5, distractor_share=0.5), ValueError,
     "apply to task='agreement' only"),
    (lambda: score_on_task(nn.Linear(2, 1), "copy", 5), ValueError, "task must be one of"),
])
def test_bad_input_is_rejected_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_both_spellings_of_a_kind_build_the_same_model():
    torch.manual_seed(0)
    lower = make_model("lstm", "adding", hidden_size=4)
    torch.manual_seed(0)
    upper = make_model("LSTM", "adding", hidden_size=4)
    for a, b in zip(lower.state_dict().values(), upper.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert lower.kind == upper.kind == "LSTM"
    with pytest.raises(ValueError, match="kind must be one of"):
        make_model("Lstm", "adding")
