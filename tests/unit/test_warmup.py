"""The worker's kernel warm-up: its sample stream is valid and complete, and a fresh process
that ran it has compiled the kernels of every stage, with nothing sent anywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson

from streams.contract import EVENT_TYPES, Decoder, event_key
from streams.settings import Settings
from streams.warmup import sample_events, warm_up

T0 = 1_767_600_000_000 - 1_767_600_000_000 % 900_000

# The kernels every poll, step, flush and SLO evaluation of the worker calls.
HOT_KERNELS = ("kernels.jsonscan", "kernels.eventcheck", "kernels.spans", "kernels.admission",
               "kernels.spanmap", "kernels.aggregate", "kernels.sparse", "kernels.sketch",
               "kernels._codec", "kernels._queueing")

_PROBE = """
import importlib, json, sys
from numba.core.registry import CPUDispatcher
from streams.settings import Settings
from streams.warmup import warm_up
warm_up(Settings.from_mapping({"kafka": {"bootstrap": "127.0.0.1:9"}}, env={}))
out = {}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    out[name] = sorted(k for k, v in vars(module).items()
                       if isinstance(v, CPUDispatcher) and v.signatures)
print(json.dumps(out))
"""


def test_the_sample_stream_is_valid_and_has_every_event_kind():
    decoder = Decoder.from_settings(Settings().ingest, check_key=False)
    events = sample_events(T0)
    for event in events:
        decoded = decoder.decode(orjson.dumps(event), event_key(event).encode(), T0 + 3_600_000)
        assert isinstance(decoded, dict), (event, decoded)
    assert {e["type"] for e in events} == set(EVENT_TYPES)
    assert len({e["event_id"] for e in events}) == len(events)


def test_warm_up_runs_offline_and_says_how_long_it_took():
    seconds = warm_up(Settings.from_mapping({"kafka": {"bootstrap": "127.0.0.1:9"}}, env={}),
                      now_ms=T0)
    assert 0 < seconds < 600


def test_a_fresh_process_has_the_kernels_of_every_stage_compiled_after_it():
    probe = subprocess.run([sys.executable, "-c", _PROBE, *HOT_KERNELS], capture_output=True,
                           text=True, timeout=600, check=True)
    compiled = json.loads(probe.stdout.splitlines()[-1])
    for module in HOT_KERNELS:
        assert compiled[module], f"no kernel of {module} was compiled by the warm-up"
