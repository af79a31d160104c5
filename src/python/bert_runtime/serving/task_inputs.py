"""From a task's texts to the work the model runs: prompting, tokenization and checks.

Every way in (the service's typed API, the Engine's direct calls) goes through here, so a text
gets the same prompt, truncation and checks whoever asks. Pure CPU work with no shared state:
the service may run it on a worker thread, off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from bert_runtime.config import Pooling, Truncation
from bert_runtime.errors import InputError
from bert_runtime.manifest import Manifest
from bert_runtime.serving.tasks import (
    AnyResult,
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
    FillMaskResult,
    TaskRequest,
)
from bert_runtime.serving.tokenizer import TextTokenizer


@dataclass(frozen=True)
class ModelCapabilities:
    """The tasks a prepared model serves, by the names the service uses."""

    fill_mask: bool
    classification: bool
    num_labels: int
    # A one-label head scoring with a sigmoid: graphs from before class_logits scored one logit
    # with softmax (always 1.0), so they cannot rerank.
    rerank: bool

    @property
    def tasks(self) -> list[str]:
        named = {"fill-mask": self.fill_mask, "classify": self.classification}
        return ["embed", *(task for task, has in named.items() if has)] + (
            ["rerank"] if self.rerank else []
        )

    def lacks(self, task: str, needs: str) -> InputError:
        """The error for a task this model cannot do, naming what it can."""
        return InputError(f"{task} needs {needs}; this model serves: {', '.join(self.tasks)}")


@dataclass(frozen=True)
class EmbedOptions:
    """
    How to embed: pooling and normalization (None: the model's own), a prompt by name (None:
    the model's default prompt, if any), the call's own truncation (None: the engine's), and
    `dimensions`, the number of leading values to keep (None: all).
    """

    pooling: Pooling | None = None
    normalize: bool | None = None
    prompt_name: str | None = None
    truncation: Truncation | None = None
    dimensions: int | None = None


R = TypeVar("R", bound=AnyResult)


@dataclass(frozen=True)
class Work(Generic[R]):
    """Token ids and one request per text, ready for the batcher or the engine."""

    sequences: list[np.ndarray]
    requests: list[TaskRequest[R]]

    @property
    def tokens(self) -> int:
        return sum(len(sequence) for sequence in self.sequences)


@dataclass(frozen=True)
class TokenizedText:
    ids: list[int]
    tokens: list[str]


class TaskInputs:
    """Builds the Work of each task for one model."""

    def __init__(
        self, tokenizer: TextTokenizer, manifest: Manifest, capabilities: ModelCapabilities
    ) -> None:
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.capabilities = capabilities

    def embed(self, texts: Sequence[str], options: EmbedOptions) -> Work[Embedding]:
        """Texts with the model's prompt in front, as sentence-transformers puts it."""
        width = self.manifest.embedding_size
        if options.dimensions is not None and not 1 <= options.dimensions <= width:
            raise InputError(f"dimensions is {options.dimensions}, more than the model's {width}")
        sequences = self.tokenizer.encode(
            self.prompted(texts, options.prompt_name), options.truncation
        )
        request = EmbedRequest(options.pooling, options.normalize)
        return Work(sequences, [request] * len(sequences))

    def prompted(self, texts: Sequence[str], prompt_name: str | None = None) -> list[str]:
        """`texts` with the prompt named, or the model's default prompt (most have none)."""
        prompts = self.manifest.prompts
        name = prompt_name if prompt_name is not None else self.manifest.default_prompt_name
        if name is None:
            return list(texts)
        if name not in prompts:
            known = ", ".join(repr(k) for k in sorted(prompts)) or "none"
            raise InputError(f"unknown prompt_name {name!r}: this model's prompts are {known}")
        return [prompts[name] + text for text in texts]

    def fill_mask(self, texts: Sequence[str], top_k: int) -> Work[FillMaskResult]:
        """Texts that each hold the model's mask token within the tokens the model sees."""
        if not self.capabilities.fill_mask:
            raise self.capabilities.lacks("fill-mask", "a masked-LM head")
        request = FillMaskRequest(top_k)
        sequences = self.tokenizer.encode(texts)
        mask_id = self.tokenizer.mask_id
        for index, sequence in enumerate(sequences):
            if not np.any(sequence == mask_id):
                limit = self.tokenizer.max_length
                where = ""
                if len(sequence) >= limit:
                    where = f" within its first {limit} tokens (longer texts are cut there)"
                raise InputError(
                    f"input {index}: text has no {self.tokenizer.mask_token} token{where}"
                )
        return Work(sequences, [request] * len(sequences))

    def classify(
        self, texts: Sequence[str], truncation: Truncation | None = None
    ) -> Work[Classification]:
        self._need_classification()
        sequences = self.tokenizer.encode(texts, truncation)
        return Work(sequences, [ClassifyRequest()] * len(sequences))

    def classify_pairs(
        self, pairs: Sequence[tuple[str, str]], truncation: Truncation | None = None
    ) -> Work[Classification]:
        """Sentence pairs; each request marks where its second text starts (token type 1)."""
        self._need_classification()
        encoded = self.tokenizer.encode_pairs(pairs, truncation)
        return Work(
            [ids for ids, _ in encoded], [ClassifyRequest(second_text_start=s) for _, s in encoded]
        )

    def rerank(
        self, query: str, texts: Sequence[str], truncation: Truncation | None = None
    ) -> Work[Classification]:
        """(query, text) pairs for a cross-encoder: a one-label head scored with a sigmoid."""
        capabilities = self.capabilities
        needs = "a cross-encoder (a classification head with one label"
        if not capabilities.classification:
            raise capabilities.lacks("rerank", f"{needs})")
        if capabilities.num_labels != 1:
            raise capabilities.lacks("rerank", f"{needs}; this one has {capabilities.num_labels})")
        if not capabilities.rerank:
            raise InputError(
                "this model directory was prepared by an older bert_runtime: prepare it again"
            )
        return self.classify_pairs([(query, text) for text in texts], truncation)

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        return [
            TokenizedText(ids.tolist(), self.tokenizer.token_strings(ids))
            for ids in self.tokenizer.encode(texts)
        ]

    def _need_classification(self) -> None:
        if not self.capabilities.classification:
            raise self.capabilities.lacks("classify", "a classification head")
