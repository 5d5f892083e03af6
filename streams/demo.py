"""``callslo demo``: the whole pipeline on this machine in one command.

It starts a local Kafka broker, creates the topics, starts the worker, feeds it a simulated
contact center (three tenants, five queues) 15 times faster than real time, prints the
wallboard's address and keeps a live summary in the terminal. Ctrl-C (or SIGTERM, or
``--duration-s``) stops the simulator, the worker and the broker, each by its own pid, and
removes the run directory with the broker's data, the worker's state and the logs.

Time runs faster in the demo, and honestly so: event time starts now and runs ``--speedup``
times faster than the clock, so a 15-minute interval closes about a minute later. Events are
therefore stamped ahead of the wall clock; the demo's settings let stage 1 accept events up
to the simulated day ahead (``ingest.max_future_skew_s``) instead of the 5 minutes a real
deployment allows. Every figure is computed in event time as in production; nothing else is
relaxed. The queues follow a flat profile, so calls come whatever the time of day.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import orjson

from streams.errors import CallsloError

__all__ = ["add_parser", "run", "DEMO_SCENARIO", "summary_lines"]

#: Three tenants, five queues; acme's support is well staffed, globex's sales is short at its
#: rate, initech's helpdesk is close to its target: green, red and amber tiles.
DEMO_SCENARIO = """
[[tenant]]
name = "acme"
[[tenant.queue]]
name = "support"
arrivals_per_day = 2400
profile = "flat"
talk = { dist = "lognormal", mean_s = 240, cv = 0.8 }
wrapup = { dist = "fixed", mean_s = 20 }
patience = { dist = "exponential", mean_s = 240 }
[[tenant.queue]]
name = "billing"
arrivals_per_day = 900
profile = "flat"
talk = { dist = "lognormal", mean_s = 200, cv = 0.8 }
patience = { dist = "exponential", mean_s = 180 }
[[tenant.agents]]
count = 9
skills = ["support", "billing"]
[[tenant.agents]]
count = 3
skills = ["billing", "support"]

[[tenant]]
name = "globex"
[[tenant.queue]]
name = "sales"
arrivals_per_day = 1900
profile = "flat"
talk = { dist = "lognormal", mean_s = 300, cv = 1.0 }
patience = { dist = "exponential", mean_s = 150 }
[[tenant.queue]]
name = "renewals"
arrivals_per_day = 500
profile = "flat"
talk = { dist = "exponential", mean_s = 180 }
patience = { dist = "exponential", mean_s = 300 }
[[tenant.agents]]
count = 5
skills = ["sales", "renewals"]
[[tenant.agents]]
count = 2
skills = ["renewals"]

[[tenant]]
name = "initech"
[[tenant.queue]]
name = "helpdesk"
arrivals_per_day = 1100
profile = "flat"
talk = { dist = "lognormal", mean_s = 360, cv = 0.9 }
patience = { dist = "exponential", mean_s = 300 }
[[tenant.agents]]
count = 6
skills = ["helpdesk"]
"""

_SIMULATED_HOURS = 24.0
_STATUS_MARK = {"green": "OK ", "amber": "LOW", "red": "BAD", "none": " - "}
_COLOR = {"green": "\x1b[32m", "amber": "\x1b[33m", "red": "\x1b[31m", "none": "\x1b[2m"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo", help="run broker, worker, simulator and wallboard on this machine (Ctrl-C stops)",
        description="Starts a local Kafka broker, creates the topics, starts the worker and a "
                    "simulated contact center sped up 15 times, prints the wallboard URL and a "
                    "live summary. Ctrl-C stops everything it started and removes its data.")
    parser.add_argument("--speedup", type=float, default=15.0,
                        help="event time runs this many times faster than the clock (default 15: "
                             "a 15-minute interval closes about a minute later)")
    parser.add_argument("--web-port", type=int, default=6066,
                        help="wallboard port on 127.0.0.1 (default 6066, or a free one if taken)")
    parser.add_argument("--kafka-port", type=int, default=0,
                        help="broker port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--duration-s", type=float, default=None,
                        help="stop by itself after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--refresh-s", type=float, default=1.0,
                        help="how often the summary refreshes (default 1 s)")
    parser.set_defaults(func=run)
    return parser


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class _Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def run(args: argparse.Namespace) -> int:
    if not (args.speedup > 0):
        raise CallsloError(f"--speedup must be > 0, got {args.speedup:g}")
    from streams.localkafka import Broker, free_port

    out = sys.stdout
    run_dir = Path(tempfile.mkdtemp(prefix="callslo-demo-"))
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    broker: Broker | None = None
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    code = 0
    try:
        kafka_port = args.kafka_port or free_port()
        broker = Broker(kafka_port, run_dir / "kafka")
        say(out, f"demo: run directory {run_dir} (removed when the demo stops)")
        say(out, f"demo: starting Kafka on 127.0.0.1:{kafka_port} (the first run downloads the "
                 "broker from Maven Central, a minute or two) ...")
        broker.start(fresh=True, progress=lambda line: say(out, f"  {line}"))
        # Chosen once the broker holds its ports, so neither can take the other's.
        web_port = args.web_port if args.web_port and _port_free(args.web_port) else free_port()
        config = _write_config(run_dir, broker.bootstrap, web_port, args.speedup)
        say(out, "demo: creating topics ...")
        from streams.settings import Settings
        from streams.topics import ensure_topics
        asyncio.run(ensure_topics(Settings.load(config, env={})))
        worker = _spawn(children, "worker", run_dir, [
            "worker", "--config", str(config)])
        url = f"http://127.0.0.1:{web_port}/"
        _wait_for_web(url, worker, run_dir)
        scenario = run_dir / "scenario.toml"
        scenario.write_text(DEMO_SCENARIO, encoding="utf-8")
        now_ms = int(time.time() * 1000)
        _spawn(children, "simulator", run_dir, [
            "simulate", "--scenario", str(scenario), "--topic", "--config", str(config),
            "--speedup", f"{args.speedup:g}", "--hours", f"{_SIMULATED_HOURS:g}",
            "--seed", str(args.seed), "--start", str(now_ms - now_ms % 60_000)])
        say(out, f"demo: wallboard {url}  (JSON: {url}api/queues, Prometheus: {url}metrics)")
        say(out, f"demo: one simulated day at {args.speedup:g}x; Ctrl-C stops everything")
        code = _follow(out, url, children, run_dir, args)
    except (KeyboardInterrupt, _Stop):
        say(out, "\ndemo: stopping ...")
    finally:
        signal.signal(signal.SIGTERM, _ignore)  # a second SIGTERM must not cut the cleanup short
        try:
            _stop_children(out, children)
            if broker is not None and broker.stop():
                say(out, "demo: Kafka stopped")
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)
            say(out, "demo: stopped; run directory removed")
    return code


def say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


def _ignore(signum: int, frame: Any) -> None:
    pass


def _write_config(run_dir: Path, bootstrap: str, web_port: int, speedup: float) -> Path:
    # Event time may run up to the simulated day ahead of the clock (see the module docstring).
    skew_s = int(_SIMULATED_HOURS * 3600) + 600
    config = run_dir / "callslo.toml"
    config.write_text(
        f'[kafka]\nbootstrap = "{bootstrap}"\n'
        f'[topics]\npartitions = 3\n'
        f'[ingest]\nmax_future_skew_s = {skew_s}\n'
        f'[web]\nhost = "127.0.0.1"\nport = {web_port}\n'
        f'[worker]\ndata_dir = "{run_dir / "worker"}"\n'
        f'[engine]\nrealtime_interval_s = {max(0.5, 15.0 / speedup):.1f}\n', encoding="utf-8")
    return config


def _spawn(children: list, name: str, run_dir: Path, argv: list[str]) -> subprocess.Popen[bytes]:
    log = open(run_dir / f"{name}.log", "ab")
    # A session of its own: Ctrl-C reaches only the demo, which stops children in order.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSLO_")}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", *argv], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    log.close()
    children.append((name, proc))
    return proc


def _log_tail(run_dir: Path, name: str) -> str:
    try:
        return (run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _get_json(url: str, timeout_s: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return orjson.loads(response.read())


def _wait_for_web(url: str, worker: subprocess.Popen[bytes], run_dir: Path,
                  timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if worker.poll() is not None:
            raise CallsloError(f"the worker exited with code {worker.returncode}:\n"
                               f"{_log_tail(run_dir, 'worker')}")
        try:
            _get_json(url + "api/queues", 1.0)
            return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise CallsloError(f"the worker's web server did not answer within {timeout_s:.0f} s:"
                               f"\n{_log_tail(run_dir, 'worker')}")
        time.sleep(0.5)


def _follow(out: TextIO, url: str, children: list, run_dir: Path, args: argparse.Namespace) -> int:
    """Refresh the summary until the duration is over or the worker dies."""
    tty = out.isatty()
    started = time.monotonic()
    shown = 0
    last_plain = 0.0
    while args.duration_s is None or time.monotonic() - started < args.duration_s:
        worker = dict(children)["worker"]
        if worker.poll() is not None:
            say(out, f"demo: the worker exited with code {worker.returncode}:\n"
                     f"{_log_tail(run_dir, 'worker')}")
            return 1
        try:
            tiles = _get_json(url + "api/queues?sort=name")["queues"]
        except (urllib.error.URLError, OSError, ValueError):
            tiles = None
        if tiles is not None:
            lines = summary_lines(tiles, color=tty)
            if tty:
                # Move up over the previous summary and redraw it in place.
                out.write((f"\x1b[{shown}F" if shown else "") + "\x1b[J" + "\n".join(lines) + "\n")
                out.flush()
                shown = len(lines)
            elif time.monotonic() - last_plain >= max(5.0, args.refresh_s):
                say(out, "\n".join(lines))
                last_plain = time.monotonic()
        time.sleep(args.refresh_s)
    return 0


def summary_lines(tiles: list[dict[str, Any]], color: bool = False) -> list[str]:
    """The terminal summary: the event clock, then one line per queue."""
    clock = max((t["as_of_ms"] for t in tiles if t.get("as_of_ms")), default=None)
    when = (datetime.fromtimestamp(clock / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            if clock else "waiting for the first snapshot")
    lines = [f"event time {when}   {len(tiles)} queues",
             f"{'queue':<22} {'SL 15m':>7} {'target':>6}  {'wait':>4} {'oldest':>7} "
             f"{'ASA':>6} {'aband':>6} {'avail/staffed':>13}  alerts"]
    for t in tiles:
        sl = "-" if t["service_level"] is None else f"{100 * t['service_level']:.1f}%"
        target = "-" if t["sl_target"] is None else f"{100 * t['sl_target']:.0f}%"
        oldest = "-" if t["oldest_wait_s"] is None else f"{t['oldest_wait_s']:.0f}s"
        asa = "-" if t["asa_s"] is None else f"{t['asa_s']:.0f}s"
        aband = "-" if t["abandon_rate"] is None else f"{100 * t['abandon_rate']:.1f}%"
        agents = t.get("agents") or {}
        staffed = f"{agents.get('available', 0)}/{t['staffed'] if t['staffed'] is not None else '-'}"
        alerts = ", ".join(str(a.get("kind", "alert")) for a in t["alerts"]) or "-"
        mark = _STATUS_MARK[t["status"]]
        if color:
            mark = f"{_COLOR[t['status']]}{mark}\x1b[0m"
        waiting = "-" if t["calls_waiting"] is None else str(t["calls_waiting"])
        lines.append(f"{t['key']:<22} {sl:>7} {target:>6}  {waiting:>4} {oldest:>7} {asa:>6} "
                     f"{aband:>6} {staffed:>13}  {mark} {alerts}")
    return lines


def _stop_children(out: TextIO, children: list, timeout_s: float = 40.0) -> None:
    """SIGTERM each child by its pid, newest first (the simulator before the worker), then
    SIGKILL what is still running after ``timeout_s``."""
    for name, proc in reversed(children):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                say(out, f"demo: the {name} (pid {proc.pid}) ignored SIGTERM; killing it")
                proc.kill()
                proc.wait()
        say(out, f"demo: {name} stopped (pid {proc.pid})")
