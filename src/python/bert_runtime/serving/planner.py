"""The batch planner: padding, length grouping and the token budget, for every batch that runs.

One module decides the shape of a batch, whoever forms it: the dynamic batcher choosing a batch
around its oldest text (`choose`), a direct call splitting many texts into batches (`groups`), and
the engine padding the rows it is given (`pad`). The budget is the device's (`BatchBudget`), one
for both, so a batch that leaves the queue runs as it is: nothing downstream re-sorts or slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bert_runtime.config import BatchBudget


@dataclass(frozen=True)
class Batch:
    """Padded model inputs for a list of sequences (int32, [rows, padded_length])."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    lengths: np.ndarray

    def model_inputs(self) -> dict[str, np.ndarray]:
        """The three inputs every prepared graph takes, by their graph names."""
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }

    @property
    def padded_tokens(self) -> int:
        return int(self.input_ids.size)


class BatchPlanner:
    """Plans batches within `budget` for a model whose position table has `max_positions` rows."""

    def __init__(self, budget: BatchBudget, pad_id: int, max_positions: int) -> None:
        self.budget = budget
        self.pad_id = pad_id
        self.max_positions = max_positions

    def padded_length(self, longest: int) -> int:
        """`longest` rounded up to the pad multiple, never past the model's position table."""
        multiple = self.budget.pad_multiple
        return max(longest, min(-(-longest // multiple) * multiple, self.max_positions))

    def fits(self, rows: int, longest: int) -> bool:
        """Whether `rows` rows padded to `longest` are within the budget."""
        return rows <= self.budget.max_rows and (
            rows * self.padded_length(longest) <= self.budget.max_tokens
        )

    def filled(self, real: int, rows: int, longest: int) -> bool:
        """
        Whether `real` tokens in `rows` rows padded to `longest` are at least `min_fill` of them.
        Against the longest text itself, not its padded length: the rounding up to pad_multiple
        is the same whoever joins, and counting it would keep short texts (5 tokens pad to 8)
        from ever sharing a batch under a high bound. The tolerance keeps a batch exactly at the
        bound in (0.8 * 3 * 10 is 24.000000000000004 in floats).
        """
        return real + 1e-9 >= self.budget.min_fill * rows * longest

    def worth_joining(self, rows: int, longest: int, more_rows: int, more_longest: int) -> bool:
        """
        Whether `more_rows` rows of at most `more_longest` tokens are cheaper in a batch of `rows`
        rows of at most `longest` than in a run of their own: the padding joining adds is no more
        than a run's fixed cost in tokens (`run_overhead_tokens`).
        """
        widest = max(longest, more_longest)
        added = (rows + more_rows) * widest - rows * longest - more_rows * more_longest
        return added <= self.budget.run_overhead_tokens

    def joins(
        self, rows: int, longest: int, real: int, more_rows: int, more_longest: int, more_real: int
    ) -> bool:
        """
        Whether `more_rows` rows (at most `more_longest` tokens, `more_real` in all) may join a
        batch of `rows` rows (at most `longest`, `real` in all): within the budget, and keeping
        `min_fill` of its tokens real or `worth_joining`.
        """
        count, widest = rows + more_rows, max(longest, more_longest)
        return self.fits(count, widest) and (
            self.filled(real + more_real, count, widest)
            or self.worth_joining(rows, longest, more_rows, more_longest)
        )

    def choose(self, lengths: Sequence[int], requests: Sequence[int], anchor: int) -> list[int]:
        """
        Rows for a batch around row `anchor`, within the budget; `requests[i]` says which request
        row i belongs to. First the anchor's own request, row by row (closest in length first);
        then other requests, each whole or not at all, closest in length to the anchor first, so
        the batch pads little and a request finishes in the batch that starts it where it can.
        What would break the budget, or leave less than `min_fill` of the batch real tokens (unless
        it is `worth_joining`), is skipped (a smaller one may still fit): own rows too, which then
        run in a later batch among texts nearer their length (on CPU a batch's time follows its
        padded tokens). The anchor's row always fits.
        """
        length, own = lengths[anchor], requests[anchor]
        others: dict[int, list[int]] = {}
        # (distance from the anchor's length, row, rows, their longest, their real tokens)
        candidates: list[tuple[int, int, list[int], int, int]] = []
        for row, request in enumerate(requests):
            if request != own:
                others.setdefault(request, []).append(row)
            elif row != anchor:
                size = lengths[row]
                candidates.append((abs(size - length), row, [row], size, size))
        candidates.sort()
        # Own rows one by one, then other requests whole, ordered by (farthest row from the
        # anchor's length, first row): the first row breaks ties. Each candidate's figures are
        # worked out once here: this runs for every batch, over a window of up to 4 batches.
        requests_by_closeness = []
        for rows in others.values():
            if len(rows) == 1:  # most requests under single-text traffic: no list of sizes
                size = lengths[rows[0]]
                requests_by_closeness.append((abs(size - length), rows[0], rows, size, size))
                continue
            sizes = [lengths[row] for row in rows]
            their_longest, shortest = max(sizes), min(sizes)
            farthest = max(their_longest - length, length - shortest)
            requests_by_closeness.append((farthest, rows[0], rows, their_longest, sum(sizes)))
        requests_by_closeness.sort()
        chosen, longest, real = [anchor], length, length
        # Once not even one more row of `longest` tokens fits, every candidate left would add a
        # row padded to at least that: this batch is full.
        room = self.fits(2, longest)
        for _, _, rows, their_longest, more in candidates + requests_by_closeness:
            if not room:
                break
            if self.joins(len(chosen), longest, real, len(rows), their_longest, more):
                chosen.extend(rows)
                longest, real = max(longest, their_longest), real + more
                room = self.fits(len(chosen) + 1, longest)
        return chosen

    def groups(self, lengths: Sequence[int]) -> list[list[int]]:
        """
        Row indices in batches for a direct call: sorted by length, cut into consecutive runs that
        fit the budget and keep `min_fill` of their tokens real (or are `worth_joining`), so each
        batch pads only to texts of about its own length.
        """
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        batches: list[list[int]] = []
        current: list[int] = []
        real = 0
        for row in order:
            # Sorted ascending: the new row is the longest of the batch it joins.
            longest = lengths[row]
            if current and not self.joins(
                len(current), lengths[current[-1]], real, 1, longest, longest
            ):
                batches.append(current)
                current, real = [], 0
            current.append(row)
            real += longest
        if current:
            batches.append(current)
        return batches

    def pad(self, sequences: Sequence[np.ndarray], second_starts: Sequence[int] = ()) -> Batch:
        """
        Right-pad `sequences` to one length (`padded_length` of the longest). `second_starts`:
        per row, where a sentence pair's second text starts (token type 1 from there), 0 for none.
        """
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int32, count=len(sequences))
        width = self.padded_length(int(lengths.max()))
        input_ids = np.full((len(sequences), width), self.pad_id, dtype=np.int32)
        for row, sequence in enumerate(sequences):
            input_ids[row, : len(sequence)] = sequence
        attention_mask = (np.arange(width, dtype=np.int32) < lengths[:, None]).astype(np.int32)
        token_type_ids = np.zeros_like(input_ids)
        for row, start in enumerate(second_starts):
            if start:
                token_type_ids[row, start : lengths[row]] = 1
        return Batch(input_ids, attention_mask, token_type_ids, lengths)
