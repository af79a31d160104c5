"""The CUDA path's benchmark (issue 29): one run, every table, about four minutes on an H200.

    bash .gpukit/bin/device-run.sh python3 -m bert_runtime.bench.gpu_bench --out "$OUT"
    python3 -m bert_runtime.bench.gpu_bench --device cpu --tiny --out /tmp/gb   # the dry run

bert-base-uncased's shapes with random weights (bench/random_bert.py), prepared by our own
pipeline for CUDA in fp16 (1-D mask), fp32 and fp16 packed. Tables, each with its same-run
baseline:
1. placement: where every node ran (strict mode's check) for bert-base and each tiny family;
2. fp16 engine at s128 x batch 1, 8, 32, 128, 256 (seq/s, p50/p90 latency; the session alone
   beside the whole engine path) against PyTorch eager fp16 with SDPA on the same weights;
3. fused attention: ONNX Runtime's own kernel choice vs `math` (unfused) vs the 2-D mask graph
   as it was before, and which kernels ONNX Runtime reports for each;
4. CUDA graphs on vs off at small batches;
5. mixed lengths 8-128 (mean ~40): pad-to-max vs longest-in-batch vs the planner vs packing;
6. accuracy: fp16 vs fp32 (TF32 off), TF32 on vs off, strict SkipLayerNorm; the parity fixtures
   against transformers' hidden states;
7. the HTTP server with batched clients vs the engine alone (same texts);
8. peak GPU memory per section, and both arena strategies at the largest batch;
9. the issue's targets, met or not.
Sections run in that order of need, each within the time budget (`--budget-s`); one that fails
or does not fit is reported as such and the rest still run. Tables print at the end (the device
tool returns the output's tail) and go to OUT/gpu_bench.md and OUT/gpu_bench.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import gc
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bert_runtime.config import BatchBudget, Device, EngineConfig, Precision
from bert_runtime.cuda_options import (
    ArenaExtendStrategy,
    AttentionKernel,
    CudaOptions,
    parse_attention_kernels,
)
from bert_runtime.errors import ProviderUnavailableError
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving import placement
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.session import create_session, session_options
from bert_runtime.serving.task_inputs import Work

from . import gpu_measure as measure
from .gpu_checks import (
    FIXTURES,
    fixture_parity,
    mixed_lengths,
    prepare_timed,
    random_texts,
    sequences,
    two_d_mask_copy,
)
from .random_bert import write_random_bert
from .workload import REQUEST, cosine_min, embed_mean

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"


@dataclass(frozen=True)
class Plan:
    """What one run measures: the GPU run, or the tiny CPU dry run that proves the script."""

    device: Device
    tiny: bool
    seq: int
    batches: tuple[int, ...]
    small: tuple[tuple[int, int], ...]
    fused_batches: tuple[int, ...]
    mixed_count: int
    min_seconds: float
    accuracy_texts: int
    server_seconds: float

    @property
    def precision(self) -> Precision:
        return Precision.FP16 if self.device is Device.CUDA else Precision.FP32

    @property
    def cuda(self) -> bool:
        return self.device is Device.CUDA

    @property
    def model_label(self) -> str:
        return "tiny-bert" if self.tiny else "bert-base (random weights)"


def make_plan(device: Device, tiny: bool) -> Plan:
    if tiny:
        return Plan(device, True, 16, (1, 2, 4), ((16, 1), (8, 2)), (1, 4), 64, 0.05, 16, 2.0)
    small = ((128, 1), (128, 8), (32, 1), (32, 8))
    return Plan(device, False, 128, (1, 8, 32, 128, 256), small, (1, 32, 256), 4096, 0.5, 256, 8.0)


@dataclass
class Table:
    """One printed table: a title, columns, rows of cells, and notes under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "|".join("---" for _ in self.columns) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


class Report:
    """The run's tables, their raw numbers, and the clock every section is budgeted against."""

    def __init__(self, budget_s: float, workdir: Path) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + budget_s
        self.workdir = workdir
        self.memory_sampler = measure.GpuMemory(sample=False)
        self.tables: list[Table] = []
        self.data: dict[str, Any] = {}
        self.memory: dict[str, int | None] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def log(self, message: str) -> None:
        print(f"[gpu_bench {self.elapsed():6.1f}s] {message}", flush=True)

    @contextmanager
    def section(self, title: str, columns: list[str], estimate_s: float) -> Iterator[Table | None]:
        """A table to fill; None when the budget cannot fit it. Failures become a note."""
        table = Table(title, columns)
        self.tables.append(table)
        left = self.deadline - time.perf_counter()
        if left < estimate_s:
            table.notes.append(
                f"skipped: {left:.0f}s of the budget left, ~{estimate_s:.0f}s needed"
            )
            self.log(f"skip {title}")
            yield None
            return
        self.log(f"start {title}")
        begun = time.perf_counter()
        try:
            yield table
        except Exception as error:  # any failure: a failed section must not lose the others
            table.notes.append(f"failed: {type(error).__name__}: {error}")
            traceback.print_exc()
        table.notes.append(f"section time {time.perf_counter() - begun:.1f}s")
        self.log(f"done {title}")


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


@dataclass
class Models:
    source: Path
    main: Path
    fp32: Path | None
    packed: Path | None
    two_d: Path | None
    vocab: int
    prepare_s: dict[str, float]


def prepare_models(plan: Plan, workdir: Path, report: Report) -> Models:
    """Write the random bert-base (or take tiny-bert) and prepare every variant, in parallel."""
    if plan.tiny:
        source = TESTDATA / "tiny-bert"
    else:
        source = workdir / "bert-base-random"
        if not (source / "model.safetensors").exists():
            write_random_bert(source)
    vocab = int(json.loads((source / "config.json").read_text())["vocab_size"])
    jobs = {"main": (plan.device, plan.precision, False)}
    if plan.cuda:
        jobs["fp32"] = (Device.CUDA, Precision.FP32, False)
    jobs["packed"] = (Device.CUDA, plan.precision, True)  # on CPU: the conversion alone
    outs = {name: workdir / f"prepared-{name}" for name in jobs}
    arguments = {
        name: (str(source), str(outs[name]), dev.value, prec.value, packing)
        for name, (dev, prec, packing) in jobs.items()
    }
    if plan.tiny:
        timings = {name: prepare_timed(*args) for name, args in arguments.items()}
    else:
        # Preparing is single-threaded Python (the optimizer, the fp16 converter): one process
        # per variant.
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
        with concurrent.futures.ProcessPoolExecutor(len(jobs), mp_context=spawn) as pool:
            futures = {name: pool.submit(prepare_timed, *args) for name, args in arguments.items()}
            timings = {name: future.result() for name, future in futures.items()}
    two_d = two_d_mask_copy(outs["main"], workdir / "prepared-2d-mask") if plan.cuda else None
    report.log(f"prepared {', '.join(f'{k} {v:.0f}s' for k, v in timings.items())}")
    return Models(source, outs["main"], outs.get("fp32"), outs["packed"], two_d, vocab, timings)


def engine_for(path: Path, plan: Plan, cuda: CudaOptions | None = None) -> Engine:
    """An engine as the service runs it, except not strict: placement is reported, not fatal."""
    config = EngineConfig(
        device=plan.device,
        max_sequence_length=max(plan.seq, 128),
        strict_device=False,
        cuda=cuda or CudaOptions(),
    )
    return Engine(path, config)


def _release() -> None:
    """Collect engines just dropped, so one variant's GPU memory is gone before the next."""
    gc.collect()


# --- sections ---------------------------------------------------------------------------------
def placement_section(plan: Plan, models: Models, workdir: Path, report: Report) -> None:
    columns = ["model", "nodes by provider", "float work on CPU", "shape ops on CPU", "strict"]
    with report.section("Node placement (one profiled run)", columns, 20) as table:
        if table is None:
            return
        targets = [(f"{plan.model_label} {plan.precision.value}", models.main)]
        if plan.cuda:
            for name in FIXTURES:
                out = workdir / f"placement-{name}"
                prepare(str(TESTDATA / name), out, device=Device.CUDA, precision=Precision.FP16)
                targets.append((f"{name} fp16", out))
        for label, path in targets:
            try:
                found = _profiled_placement(path, plan.device)
            except Exception as error:  # any failure: the other models' rows still count
                table.rows.append([label, f"failed: {type(error).__name__}: {error}", "", "", ""])
                continue
            try:
                placement.check_no_cpu_compute(found)
                verdict = "accepted"
            except ProviderUnavailableError:
                verdict = "refused"
            cpu = sorted({n.op_type for n in found.cpu_compute()})
            shape = sorted({n.op_type for n in found.cpu_shape_nodes()})
            row = [label, str(found.counts()), ", ".join(cpu) or "none"]
            table.rows.append([*row, ", ".join(shape) or "none", verdict])
        if not plan.cuda:
            table.notes.append("CPU dry run: every node is on CPU, so strict CUDA would refuse it")


def _profiled_placement(path: Path, device: Device) -> placement.Placement:
    options = session_options(EngineConfig(device=device))
    placement.enable_profiling(options)
    config = EngineConfig(device=device, strict_device=False)
    session = create_session(path / MODEL_NAME, config, options)
    session.run(["mean_embedding"], sequences_feeds(session, 8, 16))
    return placement.finish_profiling(session)


def sequences_feeds(session: Any, rows: int, length: int) -> dict[str, np.ndarray]:
    ids = np.full((rows, length), 5, np.int32)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
    names = {i.name for i in session.get_inputs()}
    if "mask_positions" in names:  # a fill-mask head: no mask this time
        feeds["mask_positions"] = np.zeros((0, 2), np.int64)
        feeds["top_k"] = np.array([1], np.int64)
    return {k: v for k, v in feeds.items() if k in names}


def sweep_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["batch", "engine seq/s", "p50 ms", "p90 ms", "session alone seq/s"]
    title = f"{plan.precision.value} engine at s{plan.seq} ({plan.device.value})"
    with report.section(title, columns, 15) as table:
        if table is None:
            return
        rng = np.random.default_rng(1)
        results = report.data.setdefault("sweep", {})
        for batch in plan.batches:
            rows = sequences(rng, [plan.seq] * batch, models.vocab)
            with measure.peak_memory(report.memory_sampler, report.memory, f"engine b{batch}"):
                timing = measure.timed(partial(embed_mean, main, rows), plan.min_seconds)
            feeds = main.pad(rows).model_inputs()
            alone = measure.timed(
                partial(main._runner.run, feeds, ["mean_embedding"], graph=False), plan.min_seconds
            )
            results[batch] = {
                "engine_rate": timing.rate(batch),
                "p50_ms": timing.median * 1e3,
                "p90_ms": timing.p90 * 1e3,
                "session_rate": alone.rate(batch),
            }
            table.rows.append(
                [
                    str(batch),
                    _f(timing.rate(batch)),
                    _f(timing.median * 1e3, 3),
                    _f(timing.p90 * 1e3, 3),
                    _f(alone.rate(batch)),
                ]
            )
        table.notes.append(
            "engine: Engine.run (planner padding, IO binding, mean pooling of every row); "
            "session alone: the same feeds through the bound session, mean_embedding only"
        )


def torch_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["batch", "torch seq/s", "torch p50 ms", "engine / torch", "cosine engine vs torch"]
    dtype = "fp16" if plan.cuda else "fp32"
    title = f"PyTorch eager {dtype} (transformers, SDPA) on the same weights, s{plan.seq}"
    with report.section(title, columns, 25) as table:
        if table is None:
            return
        missing = measure.torch_unavailable()
        if missing:
            table.notes.append(missing)
            return
        baseline = measure.TorchBaseline(models.source, "cuda" if plan.cuda else "cpu", plan.cuda)
        table.notes.append(baseline.version)
        rng = np.random.default_rng(1)
        results = report.data.setdefault("torch", {})
        for batch in plan.batches:
            rows = sequences(rng, [plan.seq] * batch, models.vocab)
            timing = measure.timed(partial(baseline.embed, rows), plan.min_seconds)
            engine_rate = report.data.get("sweep", {}).get(batch, {}).get("engine_rate")
            cosine = cosine_min(embed_mean(main, rows), baseline.embed(rows))
            results[batch] = {"rate": timing.rate(batch), "p50_ms": timing.median * 1e3}
            ratio = engine_rate / timing.rate(batch) if engine_rate else None
            table.rows.append(
                [
                    str(batch),
                    _f(timing.rate(batch)),
                    _f(timing.median * 1e3, 3),
                    f"{ratio:.2f}x" if ratio else "-",
                    f"{cosine:.6f}",
                ]
            )
        del baseline
        gc.collect()


def fused_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["variant"] + [f"b{b} seq/s" for b in plan.fused_batches] + ["kernels reported"]
    with report.section(f"Fused attention on and off, s{plan.seq}", columns, 40) as table:
        if table is None:
            return
        if not plan.cuda or models.two_d is None:
            table.notes.append("not measured: attention kernels are CUDA's (CPU dry run)")
            return
        math_only = CudaOptions(attention_kernels=frozenset({AttentionKernel.MATH}))
        variants = {
            "1-D mask, ONNX Runtime's choice (shipped)": (models.main, "auto", None),
            "1-D mask, math (unfused) only": (models.main, "math", math_only),
            "2-D mask (before issue 29), ONNX Runtime's choice": (models.two_d, "auto", None),
        }
        kernels = measure.probe_kernels(
            {label: f"{path}={spec}" for label, (path, spec, _) in variants.items()}
        )
        rng = np.random.default_rng(2)
        batches = {b: sequences(rng, [plan.seq] * b, models.vocab) for b in plan.fused_batches}
        for label, (path, _, cuda) in variants.items():
            engine = main if cuda is None and path == models.main else engine_for(path, plan, cuda)
            rates = [
                measure.timed(partial(embed_mean, engine, rows), plan.min_seconds).rate(b)
                for b, rows in batches.items()
            ]
            report.data.setdefault("fused", {})[label] = rates
            table.rows.append([label, *(_f(r) for r in rates), kernels.get(label, "-")])
            del engine
            _release()


def graphs_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["shape", "no graphs seq/s", "no graphs p50 ms", "graphs seq/s", "graphs p50 ms"]
    with report.section("CUDA graphs on and off", columns, 30) as table:
        if table is None:
            return
        if not plan.cuda:
            table.notes.append("not measured: CUDA graphs are CUDA's (CPU dry run)")
            return
        graphed = engine_for(models.main, plan, CudaOptions(graphs=True))
        table.notes.append(
            f"graphs engine: {len(graphed.graph_buckets.shapes()) if graphed.graph_buckets else 0}"
            f" buckets captured in a warm-up of {graphed.warmup_seconds:.1f}s"
        )
        rng = np.random.default_rng(3)
        for seq, batch in plan.small:
            rows = sequences(rng, [seq] * batch, models.vocab)
            plain = measure.timed(partial(embed_mean, main, rows), plan.min_seconds)
            fast = measure.timed(partial(embed_mean, graphed, rows), plan.min_seconds)
            agree = cosine_min(embed_mean(main, rows), embed_mean(graphed, rows))
            report.data.setdefault("graphs", {})[f"s{seq}b{batch}"] = [plain.median, fast.median]
            table.rows.append(
                [
                    f"s{seq} b{batch} (cosine {agree:.6f})",
                    _f(plain.rate(batch)),
                    _f(plain.median * 1e3, 3),
                    _f(fast.rate(batch)),
                    _f(fast.median * 1e3, 3),
                ]
            )
        del graphed
        _release()


def mixed_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["mode", "texts/s", "vs pad-to-max"]
    rng = np.random.default_rng(4)
    lengths = mixed_lengths(rng, plan.mixed_count, plan.seq)
    title = f"Mixed lengths 8-{plan.seq} (mean {np.mean(lengths):.1f}), {plan.mixed_count} texts"
    with report.section(title, columns, 25) as table:
        if table is None:
            return
        texts = sequences(rng, lengths, models.vocab)
        rows_per_batch = min(main.planner.budget.max_rows, 256)
        packed = None
        if plan.cuda and models.packed is not None:
            try:
                packed = engine_for(models.packed, plan)
            except Exception as error:  # any failure: the padded modes still run
                table.notes.append(f"packed engine failed: {type(error).__name__}: {error}")
        elif models.packed is not None:
            ops = [n.op_type for n in onnx.load(models.packed / MODEL_NAME).graph.node]
            table.notes.append(
                f"packed model converted ({ops.count('PackedAttention')} PackedAttention), not "
                "run: RemovePadding and PackedAttention have no CPU kernels"
            )

        def arrival(engine: Engine, pad_multiple: int) -> Callable[[], None]:
            padded = copy.copy(engine)
            budget = BatchBudget(rows_per_batch, rows_per_batch * 512, pad_multiple)
            padded.planner = BatchPlanner(budget, engine.tokenizer.pad_id, engine.max_length)

            def run() -> None:
                for start in range(0, len(texts), rows_per_batch):
                    embed_mean(padded, texts[start : start + rows_per_batch])

            return run

        def planned(engine: Engine) -> Callable[[], object]:
            work = Work(texts, [REQUEST] * len(texts))
            return partial(engine.run_work, work)

        modes: dict[str, Callable[[], object]] = {
            f"padded to {plan.seq}, arrival order, batches of {rows_per_batch}": arrival(
                main, plan.seq
            ),
            "padded to each batch's longest, arrival order": arrival(main, 8),
            "planner (length-sorted batches, the engine's own)": planned(main),
        }
        if packed is not None:
            modes["packed, arrival order"] = arrival(packed, 8)
            modes["packed + planner"] = planned(packed)
        rates: dict[str, float] = {}
        for label, run in modes.items():
            timing = measure.timed(run, plan.min_seconds * 2, warmup=1, max_runs=10)
            rates[label] = timing.rate(len(texts))
        base = next(iter(rates.values()))
        for label, rate in rates.items():
            table.rows.append([label, _f(rate), f"{rate / base:.2f}x"])
        report.data["mixed"] = rates
        del packed
        _release()


def accuracy_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["comparison", "texts", "cosine min", "cosine mean"]
    with report.section("Accuracy (mean-pooled embeddings)", columns, 45) as table:
        if table is None:
            return
        rng = np.random.default_rng(5)
        texts = sequences(rng, mixed_lengths(rng, plan.accuracy_texts, plan.seq), models.vocab)
        rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if plan.cuda and models.fp32 is not None:
            reference_engine = engine_for(models.fp32, plan)
            reference = _vectors(reference_engine, texts)
            del reference_engine
            rows[f"fp16 vs fp32 (TF32 off), {plan.model_label}"] = (
                _vectors(main, texts),
                reference,
            )
            tf32 = engine_for(models.fp32, plan, CudaOptions(use_tf32=True))
            rows["fp32 TF32 on vs off"] = (_vectors(tf32, texts), reference)
            del tf32
            strict = engine_for(models.main, plan, CudaOptions(skip_layer_norm_strict=True))
            rows["fp16 strict SkipLayerNorm vs fp32"] = (_vectors(strict, texts), reference)
            del strict
            _release()
        else:
            table.notes.append("fp16 vs fp32 on random weights: needs CUDA (CPU dry run)")
        for label, (found, expected) in rows.items():
            cosines = (found * expected).sum(1) / (
                np.linalg.norm(found, axis=1) * np.linalg.norm(expected, axis=1)
            )
            report.data.setdefault("accuracy", {})[label] = float(cosines.min())
            table.rows.append(
                [label, str(len(texts)), f"{cosines.min():.6f}", f"{cosines.mean():.6f}"]
            )
        parity = fixture_parity(plan.device, plan.precision, TESTDATA, report.workdir)
        for name, outcome in parity.items():
            label = f"{plan.precision.value} vs transformers fp32, {name} (parity fixture)"
            if isinstance(outcome, str):
                table.rows.append([label, "-", outcome, "-"])
                continue
            count, worst, mean = outcome
            report.data.setdefault("accuracy", {})[label] = worst
            table.rows.append([label, str(count), f"{worst:.6f}", f"{mean:.6f}"])
        table.notes.append("target: cosine >= 0.999 on every text")


def _vectors(engine: Engine, texts: list[np.ndarray]) -> np.ndarray:
    results = engine.run_work(Work(texts, [REQUEST] * len(texts)))
    return np.stack([r.vector for r in results])


def server_section(plan: Plan, models: Models, main: Engine, report: Report) -> None:
    columns = ["measure", "value"]
    with report.section("HTTP server with batched clients vs the engine alone", columns, 40) as t:
        if t is None:
            return
        missing = measure.bert_api_unavailable()
        if missing:
            t.notes.append(missing)
            return
        rng = np.random.default_rng(6)
        words = ["the", "cat", "sat", "on", "a", "mat"] if plan.tiny else None
        texts = random_texts(rng, 64 if plan.tiny else 2048, words)
        requests = [texts[i : i + 32] for i in range(0, len(texts), 32)]
        engine_rate = measure.timed(partial(main.embed, texts), plan.min_seconds, warmup=1)
        env = {
            "MODEL_NAME": str(models.main),
            "ONNX_EXECUTION_PROVIDER": plan.device.value.upper(),
            "MAX_SEQUENCE_LENGTH": str(max(plan.seq, 128)),
            "MODEL_CACHE_DIR": str(report.workdir / "server-cache"),
            "HUGE_PAGES": "false",
            "MAX_QUEUE_DELAY_MS": "2",
        }
        with measure.running_server(env, report.workdir / "server.log", timeout=120) as url:
            measure.drive_server(url, requests, clients=4, seconds=1.0)
            served = measure.drive_server(url, requests, clients=16, seconds=plan.server_seconds)
        rate = engine_rate.rate(len(texts))
        report.data["server"] = {"engine": rate, "server": served}
        t.rows += [
            ["engine alone, tokenize + planned batches (texts/s)", _f(rate)],
            ["server, 16 clients x 32-text POST /embed (texts/s)", _f(served)],
            ["server / engine", f"{served / rate:.0%}"],
        ]
        t.notes.append("target: server >= 80% of the engine alone")


def memory_section(plan: Plan, models: Models, report: Report) -> None:
    columns = ["what", "peak GPU MiB above idle"]
    with report.section("Peak GPU memory", columns, 20) as table:
        if table is None:
            return
        if report.memory_sampler.baseline is None:
            table.notes.append("not measured: no nvidia-smi (CPU dry run)")
        largest = plan.batches[-1]
        if plan.cuda:
            rng = np.random.default_rng(7)
            rows = sequences(rng, [plan.seq] * largest, models.vocab)
            for strategy in ArenaExtendStrategy:
                gc.collect()
                name = f"arena {strategy.value}: load + b{largest} s{plan.seq}"
                with measure.peak_memory(report.memory_sampler, report.memory, name):
                    engine = engine_for(
                        models.main, plan, CudaOptions(arena_extend_strategy=strategy)
                    )
                    embed_mean(engine, rows)
                    del engine
                    _release()
        for name, mib in report.memory.items():
            table.rows.append([name, "-" if mib is None else str(mib)])


def targets_section(plan: Plan, report: Report) -> None:
    table = Table("Targets (issue 29)", ["target", "measured", "verdict"])
    report.tables.append(table)
    data = report.data
    sweep, torch = data.get("sweep", {}), data.get("torch", {})

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    big = max(plan.batches)
    rate = sweep.get(big, {}).get("engine_rate")
    ratio = rate / torch[big]["rate"] if rate and big in torch else None
    table.rows.append(
        [
            f"s{plan.seq} b{big}: >= 20,000 seq/s",
            _f(rate),
            verdict(None if rate is None else rate >= 20000),
        ]
    )
    table.rows.append(
        [
            f"s{plan.seq} b{big}: >= 1.3x PyTorch",
            _f(ratio, 2),
            verdict(None if ratio is None else ratio >= 1.3),
        ]
    )
    latency = sweep.get(1, {}).get("p50_ms")
    table.rows.append(
        [
            "b1 latency <= 1.0 ms",
            _f(latency, 3),
            verdict(None if latency is None else latency <= 1.0),
        ]
    )
    one = torch.get(1, {}).get("p50_ms")
    speed = one / latency if one and latency else None
    table.rows.append(
        [
            "b1: >= 3x faster than PyTorch",
            _f(speed, 2),
            verdict(None if speed is None else speed >= 3),
        ]
    )
    mixed = data.get("mixed", {})
    packed = max((v for k, v in mixed.items() if k.startswith("packed")), default=None)
    gain = packed / next(iter(mixed.values())) if packed and mixed else None
    table.rows.append(
        [
            "mixed lengths: >= 1.8x over pad-to-max",
            _f(gain, 2),
            verdict(None if gain is None else gain >= 1.8),
        ]
    )
    server = data.get("server")
    share = server["server"] / server["engine"] if server else None
    table.rows.append(
        ["server >= 80% of engine", _f(share, 2), verdict(None if share is None else share >= 0.8)]
    )
    cosines = [v for k, v in data.get("accuracy", {}).items() if k.startswith("fp16 vs ")]
    worst = min(cosines) if cosines else None
    table.rows.append(
        [
            "fp16 vs fp32 cosine >= 0.999",
            _f(worst, 6),
            verdict(None if worst is None else worst >= 0.999),
        ]
    )
    if not plan.cuda:
        table.notes.append("CPU dry run: the targets are the H200's; nothing here measures them")


# --- the run ----------------------------------------------------------------------------------
def run(plan: Plan, out: Path, workdir: Path, budget_s: float) -> int:
    report = Report(budget_s, workdir)
    facts = measure.environment_facts()
    report.data["environment"] = facts
    report.log(f"environment {facts}")
    models = prepare_models(plan, workdir, report)
    report.memory_sampler = measure.GpuMemory()
    report.data["prepare_seconds"] = models.prepare_s
    main = engine_for(models.main, plan)
    report.log(f"main engine on {main.device_info}, warm-up {main.warmup_seconds:.1f}s")
    placement_section(plan, models, workdir, report)
    for step in (
        sweep_section,
        torch_section,
        fused_section,
        graphs_section,
        mixed_section,
        accuracy_section,
        server_section,
    ):
        step(plan, models, main, report)
    del main
    _release()
    memory_section(plan, models, report)
    targets_section(plan, report)
    report.memory_sampler.close()
    return write_report(report, plan, out)


def write_report(report: Report, plan: Plan, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    header = [
        f"# gpu_bench ({plan.device.value}{', tiny model' if plan.tiny else ''}), "
        f"{report.elapsed():.0f}s",
        "",
        f"- environment: {report.data.get('environment')}",
        f"- prepare seconds: {report.data.get('prepare_seconds')}",
        "",
    ]
    text = "\n".join(header) + "\n".join(table.markdown() for table in report.tables)
    (out / "gpu_bench.md").write_text(text)
    payload = {
        "data": report.data,
        "memory_mib": report.memory,
        "tables": [table.__dict__ for table in report.tables],
    }
    (out / "gpu_bench.json").write_text(json.dumps(payload, indent=1, default=str))
    print("\n" + text, flush=True)
    return 0


def probe(specs: list[str]) -> int:
    """Child of probe_kernels: one s128 x 8 batch per `label=DIR=KERNELS`, marked on stdout."""
    for spec in specs:
        label, path, kernels = spec.rsplit("=", 2)
        cuda = CudaOptions(attention_kernels=parse_attention_kernels(kernels))
        config = EngineConfig(device=Device.CUDA, strict_device=False, warmup=False, cuda=cuda)
        engine = Engine(Path(path), config)
        print(f"{measure.PROBE_MARK}{label}", flush=True)
        embed_mean(engine, [np.full(min(128, engine.max_length), 7, np.int32)] * 8)
        sys.stdout.flush()
        del engine
        gc.collect()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=False, default=Path("gpu-bench-out"))
    parser.add_argument("--device", choices=[d.value for d in Device], default=Device.CUDA.value)
    parser.add_argument("--tiny", action="store_true", help="tiny-bert and small shapes")
    parser.add_argument("--budget-s", type=float, default=220.0, help="time for every section")
    parser.add_argument("--workdir", type=Path, default=None, help="models (default: a temp dir)")
    parser.add_argument("--probe", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        return probe(args.probe)
    plan = make_plan(Device(args.device), args.tiny)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    try:
        return run(plan, args.out, workdir, args.budget_s)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
