"""Running one batch on the batcher's worker thread, so that one bad text fails only itself."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any

from bert_runtime.serving.batch_protocol import BatchRunner
from bert_runtime.serving.waiting import WaitingText

logger = logging.getLogger(__name__)


async def run_batch(runner: BatchRunner, executor: Executor, batch: list[WaitingText]) -> bool:
    """
    Run `batch` off the event loop and resolve its texts. If the batch fails, each text is retried
    alone: only the submission of a text that fails again gets the error (its other texts are then
    dropped; other submissions' texts are not). Returns whether the batch as a whole failed.
    """
    loop = asyncio.get_running_loop()
    try:
        results = await loop.run_in_executor(executor, _run, runner, batch)
    except Exception as error:  # - isolated per text below
        if len(batch) == 1:
            batch[0].fail(error)
            return True
        logger.warning("batch of %d failed (%s); retrying texts one by one", len(batch), error)
        for text in batch:
            if text.future.done():  # cancelled, or a sibling already failed
                continue
            try:
                (result,) = await loop.run_in_executor(executor, _run, runner, [text])
                text.resolve(result)
            except Exception as text_error:  # - belongs to this text only
                text.fail(text_error)
        return True
    for text, result in zip(batch, results, strict=True):
        text.resolve(result)
    return False


def _run(runner: BatchRunner, batch: list[WaitingText]) -> list[Any]:
    return runner.run([text.sequence for text in batch], [text.request for text in batch])
