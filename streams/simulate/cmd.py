"""``callslo simulate``: run the contact-center model and write its events to a file or a topic.

Examples::

    callslo simulate --out day.jsonl --seed 7                      # built-in scenario, one day
    callslo simulate --scenario centers.toml --days 5 --topic      # to topics.events, unpaced
    callslo simulate --arrivals-per-hour 200 --aht-s 180 --agents 12 --hours 100 \\
        --seed 1 --start 2025-03-03 --out erlang.jsonl              # stationary, for theory checks
    callslo simulate --realtime --topic --duplicates 0.01 --disorder-ms 3000

Exit code 0 on success, 2 on invalid options (message on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streams.errors import ConfigError
from streams.simulate.faults import FaultInjector, FaultSpec
from streams.simulate.model import Simulation
from streams.simulate.output import Pacer, produce_kafka, write_file
from streams.simulate.profile import DAY_MS, default_scenario, load_scenario, stationary_scenario

__all__ = ["add_parser", "run", "parse_start_ms"]

_STATIONARY = ("arrivals_per_hour", "aht_s", "agents")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``simulate`` subcommand on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "simulate", help="generate contact-center events (discrete-event model, M(t)/G/n+G)",
        description="Simulates queues, callers and agents and emits every contract-v1 event in "
                    "event-time order, the same events for the same --seed. Without --scenario "
                    "or the stationary options it runs the built-in two-tenant scenario. "
                    "See docs/simulator.md.")
    what = parser.add_argument_group("what to simulate")
    what.add_argument("--scenario", type=Path, help="scenario file (TOML, see docs/simulator.md)")
    what.add_argument("--arrivals-per-hour", type=float, help="stationary mode: constant arrival rate")
    what.add_argument("--aht-s", type=float, help="stationary mode: mean talk time, seconds")
    what.add_argument("--agents", type=int, help="stationary mode: agents, logged in throughout")
    what.add_argument("--patience-s", type=float,
                      help="stationary mode: mean exponential patience (default: callers never abandon)")
    what.add_argument("--service", choices=["exponential", "lognormal"], default=None,
                      help="stationary mode: talk-time distribution (default exponential)")
    what.add_argument("--service-cv", type=float, default=None,
                      help="stationary mode: coefficient of variation of a lognormal talk time (default 1)")
    span = what.add_mutually_exclusive_group()
    span.add_argument("--hours", type=float, help="length of the run in hours (default 24)")
    span.add_argument("--days", type=float, help="length of the run in days")
    what.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    what.add_argument("--start", help="event time of the start: ISO date/time (UTC unless it "
                                      "names an offset) or epoch ms; default: the latest UTC "
                                      "midnight that keeps the whole run in the past "
                                      "(now with --realtime)")
    where = parser.add_argument_group("output")
    target = where.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="JSON-lines file, - for stdout")
    target.add_argument("--topic", nargs="?", const="", metavar="NAME",
                        help="Kafka topic (default: topics.events of the settings)")
    where.add_argument("--bootstrap", help="Kafka bootstrap servers (default: kafka.bootstrap of the settings)")
    where.add_argument("--config", type=Path, default=None, help="settings file (TOML)")
    pace = where.add_mutually_exclusive_group()
    pace.add_argument("--speedup", type=float, help="pace by event time, X times faster than real time")
    pace.add_argument("--realtime", action="store_true", help="pace in real time (--speedup 1)")
    faults = parser.add_argument_group("fault injection (for tests)")
    faults.add_argument("--duplicates", type=float, default=0.0, help="share of events sent twice")
    faults.add_argument("--disorder-ms", type=int, default=0, help="bounded out-of-order delivery, ms")
    faults.add_argument("--malformed", type=float, default=0.0,
                        help="malformed lines added per event (bad JSON, wrong types, unknown types)")
    faults.add_argument("--late", type=float, default=0.0, help="share of events delivered late")
    faults.add_argument("--late-delay-s", type=float, default=1800.0,
                        help="how late a late event is delivered, seconds (default 1800)")
    parser.set_defaults(func=run)
    return parser


def parse_start_ms(text: str) -> int:
    """``2025-03-04``, ``2025-03-04T09:00:00Z``, ``2025-03-04T10:00+01:00`` or epoch ms."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--start {text!r} is neither an ISO date/time nor epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def _scenario(args: argparse.Namespace):
    given = [name for name in _STATIONARY if getattr(args, name) is not None]
    extras = [name for name in ("patience_s", "service", "service_cv") if getattr(args, name) is not None]
    if not given:
        if extras:
            raise ConfigError(f"--{extras[0].replace('_', '-')} belongs to the stationary mode: "
                              "also give --arrivals-per-hour, --aht-s and --agents")
        return default_scenario() if args.scenario is None else load_scenario(str(args.scenario))
    if args.scenario is not None:
        raise ConfigError("give either --scenario or the stationary options, not both")
    if len(given) < len(_STATIONARY):
        missing = [f"--{n.replace('_', '-')}" for n in _STATIONARY if n not in given]
        raise ConfigError(f"the stationary mode also needs {', '.join(missing)}")
    if not (math.isfinite(args.arrivals_per_hour) and args.arrivals_per_hour >= 0):
        raise ConfigError(f"--arrivals-per-hour must be >= 0, got {args.arrivals_per_hour:g}")
    if not (math.isfinite(args.aht_s) and args.aht_s > 0):
        raise ConfigError(f"--aht-s must be > 0 seconds, got {args.aht_s:g}")
    if not 0 <= args.agents <= 100_000:
        raise ConfigError(f"--agents must be 0..100000, got {args.agents}")
    if args.patience_s is not None and not (math.isfinite(args.patience_s) and args.patience_s > 0):
        raise ConfigError(f"--patience-s must be > 0 seconds, got {args.patience_s:g}")
    cv = 1.0 if args.service_cv is None else args.service_cv
    if not 0.01 <= cv <= 10:
        raise ConfigError(f"--service-cv must be 0.01..10, got {cv:g}")
    return stationary_scenario(args.arrivals_per_hour, args.aht_s, args.agents, args.patience_s,
                               args.service or "exponential", cv)


def _duration_ms(args: argparse.Namespace) -> int:
    hours = args.hours if args.hours is not None else 24 * (1 if args.days is None else args.days)
    if not (math.isfinite(hours) and 0 < hours <= 24 * 3660):
        raise ConfigError(f"the run must last more than 0 and at most 3660 days, got {hours:g} h")
    return round(hours * 3_600_000)


def _start_ms(args: argparse.Namespace, duration_ms: int, now_ms: int) -> int:
    if args.start is not None:
        return parse_start_ms(args.start)
    if args.realtime:
        return now_ms - now_ms % 1000
    # Stage 1 refuses events more than a few minutes ahead of its clock, so by default the
    # whole run lies in the past, starting at a UTC midnight as the profiles are daily.
    earliest = now_ms - duration_ms
    return earliest - earliest % DAY_MS


def run(args: argparse.Namespace) -> int:
    """Simulate and write; prints a summary on stderr; returns the exit code."""
    scenario = _scenario(args)
    duration_ms = _duration_ms(args)
    start_ms = _start_ms(args, duration_ms, int(time.time() * 1000))
    if args.speedup is not None and not (math.isfinite(args.speedup) and args.speedup > 0):
        raise ConfigError(f"--speedup must be > 0, got {args.speedup:g}")
    faults = FaultSpec(args.duplicates, args.disorder_ms, args.malformed, args.late,
                       round(args.late_delay_s * 1000))
    speedup = 1.0 if args.realtime else args.speedup
    simulation = Simulation(scenario, start_ms=start_ms, duration_ms=duration_ms, seed=args.seed)
    injector = FaultInjector(faults, args.seed)
    chunks = injector.apply(simulation.run())
    began = time.perf_counter()
    # The model makes no reference cycles, so the cyclic collector would only rescan the
    # millions of short-lived event dicts: about a third of the run time on a file.
    gc.freeze()
    gc.disable()
    try:
        written, where = _write(args, chunks, speedup, start_ms)
    finally:
        gc.enable()
        gc.unfreeze()
    elapsed_s = time.perf_counter() - began
    injected = ", ".join(f"{k} {v}" for k, v in sorted(injector.counts.items()) if "." not in k)
    print(f"simulate: {simulation.calls} calls, {simulation.events} events"
          + (f" (+ faults: {injected})" if injected else "")
          + f", {written} lines to {where} in {elapsed_s:.2f} s"
          + (f" ({written / elapsed_s:,.0f} lines/s)" if elapsed_s > 0 else ""), file=sys.stderr)
    return 0


def _write(args: argparse.Namespace, chunks: Any, speedup: float | None,
           start_ms: int) -> tuple[int, str]:
    """Send the chunks where the options say; return the lines written and where."""
    if args.out is not None:
        pacer = Pacer(speedup, start_ms)
        if args.out == "-":
            return write_file(chunks, sys.stdout.buffer, pacer), "stdout"
        try:
            sink = open(args.out, "wb")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out}: {exc.strerror}") from exc
        with sink:
            return write_file(chunks, sink, pacer), args.out
    from streams.settings import Settings

    settings = Settings.load(args.config)
    kafka = settings.kafka
    if args.bootstrap:
        kafka = dataclasses.replace(kafka, bootstrap=args.bootstrap)
    topic = args.topic or settings.topics.events

    async def produce() -> int:
        # Made inside the loop: the pacer's clock starts when sending starts.
        return await produce_kafka(chunks, kafka, topic, Pacer(speedup, start_ms))

    return asyncio.run(produce()), f"topic {topic} on {kafka.bootstrap}"
