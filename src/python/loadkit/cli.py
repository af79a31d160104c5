"""
`loadkit smoke | functional | load`: exit 0 when every check passes, 1 when one fails, 2 on bad
usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from loadkit.checks import SuiteReport
from loadkit.portforward import PortForwardError, port_forward
from loadkit.report import LoadReport, Thresholds
from loadkit.workload import DEFAULT_MIX, ROUTES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser, endpoint_required: bool = True) -> None:
        help_text = "base URL, e.g. http://127.0.0.1:8000"
        if not endpoint_required:
            help_text += " (default: kubectl port-forward to --service in --namespace)"
        sub.add_argument("--endpoint", required=endpoint_required, help=help_text)
        sub.add_argument("--model", default="bert", help="served model name")
        sub.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
        sub.add_argument("--output", type=Path, help="write the JSON report here")
        sub.add_argument(
            "--api-key",
            default=os.environ.get("LOADKIT_API_KEY"),
            help="bearer key (or LOADKIT_API_KEY)",
        )

    smoke = commands.add_parser(
        "smoke", help="health, metadata, one inference, GPU and cluster checks"
    )
    common(smoke, endpoint_required=False)
    smoke.add_argument(
        "--expect-gpu", action="store_true", help="fail unless the model runs on CUDA"
    )
    smoke.add_argument("--kubeconfig", help="also check nodes' nvidia.com/gpu capacity and pods")
    smoke.add_argument("--namespace", default="bert-inference")
    smoke.add_argument("--context", help="kubeconfig context")
    smoke.add_argument("--service", default="bert-inference", help="service to port-forward to")
    smoke.add_argument("--service-port", type=int, default=8000)

    functional = commands.add_parser("functional", help="health, single, batch of 4, 10 sequential")
    common(functional)

    load = commands.add_parser("load", help="Locust load test with thresholds")
    common(load)
    load.add_argument("--requests", type=int, help="exact number of requests to send")
    load.add_argument("--concurrency", type=int, default=8, help="concurrent users")
    load.add_argument(
        "--duration", type=float, help="seconds to run (with --requests: whichever ends first)"
    )
    load.add_argument("--rate", type=float, help="total requests/s cap")
    load.add_argument("--route", choices=sorted(ROUTES), default="v1")
    load.add_argument(
        "--mix", default=DEFAULT_MIX, help="request kinds and weights, e.g. single=6,batch=3,long=1"
    )
    load.add_argument("--max-p95-ms", type=float)
    load.add_argument("--max-error-rate", type=float)
    load.add_argument("--min-rps", type=float)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "load":
        if args.requests is None and args.duration is None:
            parser.error("load needs --requests, --duration or both")
        return _load(args)
    if args.command == "smoke":
        try:
            report = _smoke(args)
        except PortForwardError as error:
            print(f"loadkit: cannot reach the service: {error}", file=sys.stderr)
            return 1
    else:
        from loadkit.functional import run_functional

        report = run_functional(args.endpoint, args.model, args.timeout, args.api_key)
    print(report.summary())
    if args.output:
        args.output.write_text(report.to_json())
    return 0 if report.passed else 1


def _smoke(args: argparse.Namespace) -> SuiteReport:
    """
    Against --endpoint, or through a port-forward to the cluster service (then with cluster checks).
    """
    from loadkit.smoke import run_smoke

    def smoke_at(endpoint: str, kubeconfig: str | None, cluster: bool) -> SuiteReport:
        return run_smoke(
            endpoint,
            model=args.model,
            expect_gpu=args.expect_gpu,
            kubeconfig=kubeconfig,
            cluster_checks=cluster,
            namespace=args.namespace,
            context=args.context,
            timeout_s=args.timeout,
            api_key=args.api_key,
        )

    if args.endpoint:
        return smoke_at(args.endpoint, args.kubeconfig, cluster=args.kubeconfig is not None)
    forward = port_forward(
        args.service,
        args.namespace,
        args.service_port,
        kubeconfig=args.kubeconfig,
        context=args.context,
    )
    with forward as endpoint:
        return smoke_at(endpoint, args.kubeconfig, cluster=True)


def _load(args: argparse.Namespace) -> int:
    from loadkit.load import run_load

    def progress(line: str) -> None:
        print(f"\r[load] {line}   ", end="", file=sys.stderr, flush=True)

    try:
        report = run_load(
            args.endpoint,
            requests=args.requests,
            concurrency=args.concurrency,
            duration_s=args.duration,
            rate=args.rate,
            route=args.route,
            model=args.model,
            mix=args.mix,
            timeout_s=args.timeout,
            thresholds=Thresholds(args.max_p95_ms, args.max_error_rate, args.min_rps),
            progress=progress,
        )
    except ValueError as error:
        print(f"loadkit: error: {error}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    print(_load_summary(report))
    if args.output:
        args.output.write_text(report.to_json())
    return 0 if report.passed else 1


def _load_summary(report: LoadReport) -> str:
    lines = [
        f"load against {report.endpoint} ({report.route}, concurrency {report.concurrency}):",
        f"  requests {report.completed} ({report.succeeded} ok, {report.failed} failed) "
        f"in {report.duration_s:.1f}s",
        f"  throughput {report.throughput_rps:.1f} req/s, error rate {report.error_rate:.4f}",
    ]
    if report.latency_ms is not None:
        lat = report.latency_ms
        lines.append(
            f"  latency ms p50 {lat.p50_ms:.1f} p90 {lat.p90_ms:.1f} "
            f"p95 {lat.p95_ms:.1f} p99 {lat.p99_ms:.1f}"
        )
    for category, count in report.errors.items():
        lines.append(f"  errors {category}: {count}")
    lines += [f"  THRESHOLD MISSED: {v}" for v in report.violations]
    lines.append("passed" if report.passed else "FAILED")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
