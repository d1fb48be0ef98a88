"""Hidden tests: the cases on which `make grade` and the Gradescope package grade code.

Instructor-only: this folder is not part of the installed `throughtime` package, `make
assignments` leaves it out of the student edition, and the website does not build it.

Every code exercise that calls a check of `throughtime.checks`, `throughtime.text_checks`,
`throughtime.seq2seq_checks` or `throughtime.scan_checks` (`checks.graded_checks()` lists
them all), or defines a function `f` for which a check
`check_f` exists, is graded by that check on hidden cases: inputs drawn
from the course's private seed, with the sizes below. A check missing from `SIZES` uses the
sizes of its public cases with the private seed, so a new exercise is covered as soon as it
calls a check. The expected values are computed by the grader, in its own process; the
student's code sees only the inputs.

The seed lives in `secret.txt` next to this file (created on first use, ignored by git).
Keep it, so that regrading gives the same cases, and keep it out of every repository and
folder that students can read.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from throughtime import checks

INF = float("inf")
HIDDEN_TESTS_VERSION = 1  # part of the seed: change it to draw new cases for every check

_STEPS = [(5, 2, 3), (1, 1, 1), (4, 6, 2), (3, 3, 5)]  # (B, I, H): one with B = H = I = 1
SIZES: dict[str, list] = {
    "check_rnn_step": _STEPS,
    "check_lstm_step": _STEPS,
    "check_gru_step": _STEPS,
    "check_lstm_peephole_step": _STEPS,
    "check_rnn_step_backward": _STEPS,
    "check_lstm_step_backward": _STEPS,
    "check_gru_step_backward": _STEPS,
    "check_rnn_backward": [(6, 2, 3, 4), (1, 3, 2, 2), (7, 1, 5, 3)],  # (T, B, I, H): T = 1 too
    # (scale of the gradients, max_norm, norm_type): above, below and far above the threshold
    "check_clip_by_norm": [(3.0, 2.0, 2.0), (0.05, 1.0, 2.0), (5.0, 0.5, 2.0), (1.0, 2.0, 1.0),
                           (1.0, 0.7, INF)],
    "check_mase": [(60, 12, 12), (25, 5, 4), (36, 7, 3)],  # (len(y_train), horizon, season)
    "check_param_count": [(kind, i, h, 2) for kind in ("RNN", "LSTM", "GRU")
                          for i, h in ((7, 11), (1, 1), (64, 256))]
                         + [(kind, 5, 9, 1) for kind in ("RNN", "LSTM", "GRU")]
                         + [("LSTM", 4, 6, 0)],
    # (B, V, temperature, top_k, scale of the logits): sharp, flat, top-k (k = 1 too), and
    # logits so large that exp overflows without the max subtracted
    "check_next_char_probabilities": [(4, 11, 1.0, None, 2.0), (3, 13, 0.7, None, 2.0),
                                      (5, 9, 2.5, None, 2.0), (3, 12, 0.9, 4, 2.0),
                                      (4, 7, 1.2, 1, 2.0), (3, 10, 0.1, None, 500.0),
                                      (2, 9, 1.0, 6, 500.0)],
    # (N, V, scale of the logits): a few and many characters, and logits large enough that
    # exp overflows in most draws without the max subtracted (and 2 ** bits stays finite)
    "check_bits_and_perplexity": [(60, 9, 1.5), (300, 40, 3.0), (3, 5, 0.5), (30, 11, 250.0)],
    # (T, B, I, H): one step and one unit too
    "check_bidirectional_gru": [(5, 2, 3, 4), (1, 1, 1, 1), (7, 3, 2, 3)],
    # (K hypotheses, V tokens, beam width): one hypothesis, and a width of all K V candidates
    "check_beam_step": [(2, 7, 4), (5, 8, 3), (1, 3, 3), (3, 5, 15)],
    # the arrays' shape
    "check_combine": [(4,), (3, 2), (2, 3, 4)],
    # (T, B, H): T = 1, a power of two, and lengths that are not
    "check_hillis_steele": [(1, 1, 1), (9, 2, 3), (16, 1, 2), (7, 3, 1)],
}

POINTS: dict[str, float] = {}
"""Points per exercise, by the name of the function the student writes (default 1)."""


def points(function: str) -> float:
    return float(POINTS.get(function, 1.0))


def course_seed(secret_file: Path) -> int:
    """The course's private seed: read from ``secret_file``, created there if missing."""
    secret_file = Path(secret_file)
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(f"{secrets.randbits(62)}\n")
        secret_file.chmod(0o600)
        print(f"A new course secret was written to {secret_file}: keep it (regrading needs "
              "it) and keep it out of every repository students can read.")
    return int(secret_file.read_text().strip())


def cases(check: str, seed: int, options: dict | None = None) -> list[checks.Case]:
    """The hidden cases of ``check`` for a course seed (``options``: the check's keyword
    arguments in the exercise, such as ``norm_types``)."""
    return checks.hidden_cases(check, [seed, HIDDEN_TESTS_VERSION], SIZES.get(check),
                               **(options or {}))
