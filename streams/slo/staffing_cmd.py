"""``callslo staffing``: required agents for one queue-interval (Erlang C, or Erlang A with patience).

Example::

    callslo staffing --arrivals 400 --interval-s 3600 --aht-s 180 --threshold-s 20 --target 0.8
    callslo staffing ... --patience-s 120 --max-occupancy 0.85 --shrinkage 0.3 --json

``--json`` prints one object with the keys ``agents``, ``raw_agents``,
``service_level``, ``asa_s``, ``p_wait``, ``occupancy`` and ``p_abandon``
(``null`` without ``--patience-s``). Definitions are in :mod:`kernels.erlang`.
Exit code 0 on success, 2 on invalid input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from kernels.erlang import MAX_TRAFFIC_ERLANGS, required_agents

__all__ = ["add_parser", "run", "JSON_KEYS"]

JSON_KEYS = ("agents", "raw_agents", "service_level", "asa_s", "p_wait", "occupancy", "p_abandon")

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``staffing`` subcommand on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "staffing",
        help="required agents for a service-level target (Erlang C / Erlang A)",
        description="Agents needed so that --target of the calls are answered within "
        "--threshold-s. Without --patience-s the queue is Erlang C (nobody abandons); with it, "
        "Erlang A, where service level counts answered-within-threshold out of all offered calls.",
    )
    parser.add_argument("--arrivals", type=float, required=True, help="calls offered in the interval")
    parser.add_argument("--interval-s", type=float, required=True, help="interval length, seconds")
    parser.add_argument("--aht-s", type=float, required=True, help="average handle time, seconds")
    parser.add_argument("--threshold-s", type=float, required=True, help="service-level threshold, seconds")
    parser.add_argument("--target", type=float, required=True, help="service-level target as a fraction, e.g. 0.8")
    parser.add_argument("--patience-s", type=float, default=None, help="mean caller patience, seconds (Erlang A)")
    parser.add_argument("--max-occupancy", type=float, default=1.0, help="occupancy cap, fraction (default 1.0)")
    parser.add_argument("--shrinkage", type=float, default=0.0, help="share of paid time off the phones (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def _input_problem(args: argparse.Namespace) -> str | None:
    """The first invalid option, described for the operator, or None."""
    checks = [
        (args.arrivals, math.isfinite(args.arrivals) and args.arrivals >= 0, "--arrivals must be >= 0"),
        (args.interval_s, math.isfinite(args.interval_s) and args.interval_s > 0, "--interval-s must be > 0"),
        (args.aht_s, math.isfinite(args.aht_s) and args.aht_s > 0, "--aht-s must be > 0"),
        (args.threshold_s, math.isfinite(args.threshold_s) and args.threshold_s >= 0, "--threshold-s must be >= 0"),
        (args.target, 0 < args.target < 1, "--target must be a fraction between 0 and 1 (0.8 for 80%)"),
        (args.max_occupancy, 0 < args.max_occupancy <= 1, "--max-occupancy must be in (0, 1] (0.85 for 85%)"),
        (args.shrinkage, 0 <= args.shrinkage < 1, "--shrinkage must be in [0, 1) (0.3 for 30%)"),
    ]
    if args.patience_s is not None:
        checks.append((args.patience_s, args.patience_s > 0, "--patience-s must be > 0"))
    for value, ok, message in checks:
        if not ok:
            return f"{message}, got {value:g}"
    traffic = args.arrivals * args.aht_s / args.interval_s
    if traffic > MAX_TRAFFIC_ERLANGS:
        return f"offered load is {traffic:g} Erlangs; at most {MAX_TRAFFIC_ERLANGS:g} is supported"
    return None


def run(args: argparse.Namespace) -> int:
    """Print the staffing answer; return the exit code."""
    problem = _input_problem(args)
    if problem is not None:
        print(f"callslo staffing: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = required_agents(
        args.arrivals,
        args.interval_s,
        args.aht_s,
        args.threshold_s,
        args.target,
        patience_s=args.patience_s,
        max_occupancy=args.max_occupancy,
        shrinkage=args.shrinkage,
    ).row()
    if args.json:
        print(json.dumps({key: _finite_or_none(result[key]) for key in JSON_KEYS}))
    else:
        print(_text(args, result))
    return EXIT_OK


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or Infinity: an undefined metric becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _text(args: argparse.Namespace, result: dict[str, Any]) -> str:
    model = "Erlang C" if args.patience_s is None else f"Erlang A (mean patience {args.patience_s:g} s)"
    asa = result["asa_s"]
    lines = [
        f"{model}: {args.arrivals:g} calls in {args.interval_s:g} s, AHT {args.aht_s:g} s "
        f"= {result['traffic_erlangs']:.2f} Erlangs",
        f"  agents to schedule   {result['agents']}"
        + (f"  (shrinkage {_percent(args.shrinkage)})" if args.shrinkage else ""),
        f"  agents on the phones {result['raw_agents']}",
        f"  service level        {_percent(result['service_level'])} within {args.threshold_s:g} s "
        f"(target {_percent(args.target)})",
        f"  ASA                  {'n/a' if asa is None or not math.isfinite(asa) else f'{asa:.1f} s'}",
        f"  probability of wait  {_percent(result['p_wait'])}",
        f"  occupancy            {_percent(result['occupancy'])}"
        + (f"  (cap {_percent(args.max_occupancy)})" if args.max_occupancy < 1 else ""),
    ]
    if args.patience_s is not None:
        lines.append(f"  abandonment          {_percent(result['p_abandon'])}")
    return "\n".join(lines)
