"""The waiting texts: the window a batch is chosen from."""

from __future__ import annotations

import asyncio

import numpy as np

from bert_runtime.config import BatchBudget
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.tasks import EmbedRequest
from bert_runtime.serving.waiting import Submission, WaitingText, WaitingTexts


def _texts(loop: asyncio.AbstractEventLoop, deadlines: list[float]) -> list[WaitingText]:
    texts = []
    for deadline in deadlines:
        submission = Submission(deadline, loop.create_future())
        text = WaitingText(np.ones(5, np.int64), EmbedRequest(), 0.0, submission, 0, 5)
        submission.texts = [text]
        texts.append(text)
    return texts


def test_the_anchor_is_chosen_even_when_its_deadline_passed_since_it_was_found() -> None:
    """
    The batcher finds the oldest text in time, then reads the clock again to choose its batch: a
    deadline passing in between must not lose the anchor (it once stopped the batcher's loop).
    """
    loop = asyncio.new_event_loop()
    try:
        anchor, other, late = _texts(loop, [10.0, 20.0, 5.0])
        queue = WaitingTexts()
        queue.add([anchor, other, late])
        assert queue.oldest(now=9.0)[0] is anchor
        planner = BatchPlanner(BatchBudget(8, 1024), 0, 64)
        choice = queue.choose(anchor, planner, now=11.0)
        assert choice.texts == [anchor, other]
        assert choice.late == [late]
    finally:
        loop.close()
