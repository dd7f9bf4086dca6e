#!/usr/bin/env python3
"""Benchmark the device runtime: Speak → first ALSA write, allocations per request, daemon RSS.

Two parts, both on the real code path with ALSA writing into a file PCM (no card needed):

1. In-process (the engine `mynad` builds, via ``app.build_core``): latency from ``speak()`` to the
   first period the ALSA sink hands to alsa-lib, and with tracemalloc the bytes a request allocates
   transiently (peak above the idle baseline) and keeps (net growth), for cache misses and hits.
2. The real daemon as a subprocess on a private D-Bus: a dbus-fast client calls ``Speak`` and the
   daemon's first ALSA write is read back from ``GetStatus`` (CLOCK_MONOTONIC is shared by all
   processes, so client send time and daemon write time subtract); then the daemon's VmRSS/VmHWM.

Usage: python tools/bench_runtime.py [--board generic-x86_64] [--requests 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

# 20 words each; the number makes every sentence distinct so each one is a cache miss.
SENTENCE = "In {n} hundred meters turn left onto Main Street then keep right at the fork and follow the signs to the airport"


def _asoundrc(folder: Path) -> Path:
    rc = folder / "asoundrc"
    rc.write_text(
        'pcm.tofile { type file; slave.pcm "null"; file "%s"; format "raw" }\n' % (folder / "out.raw"),
        encoding="utf-8",
    )
    return rc


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p90": _pct(values, 0.9), "max": max(values), "n": len(values)}


def bench_in_process(board: str, requests: int, folder: Path) -> dict[str, Any]:
    """Part 1: latency and allocations through the engine the daemon uses."""
    os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{_asoundrc(folder)}"
    from myna.app import build_core
    from myna.cache import AudioCache
    from myna.config import DaemonConfig, SpeakOptions
    from myna.engine import Engine, EventKind, JobEvent

    t0 = time.monotonic()
    core = build_core(DaemonConfig(board=board), sink_uri="alsa:tofile")
    load_s = time.monotonic() - t0
    done: dict[int, threading.Event] = {}

    def on_event(event: JobEvent) -> None:
        if event.kind is EventKind.FINISHED:
            done.setdefault(event.job_id, threading.Event()).set()

    core.engine.subscribe(on_event)
    counter = iter(range(10**9))

    def say(text: str) -> float:
        job = core.engine.speak(text, SpeakOptions())
        done.setdefault(job, threading.Event()).wait(30)
        del done[job]  # the benchmark's own bookkeeping must not count as the engine's memory
        return float(core.engine.status()["last_first_audio_ms"])

    try:
        for _ in range(3):  # warm-up: first-call costs of numpy, LiteRT and ALSA
            say(SENTENCE.format(n=next(counter)))
        latency_miss = [say(SENTENCE.format(n=next(counter))) for _ in range(requests)]
        say("Turn right now.")
        latency_hit = [say("Turn right now.") for _ in range(requests)]

        tracemalloc.start()
        for _ in range(3):
            say(SENTENCE.format(n=next(counter)))
            say("Turn right now.")

        def measure(text_of: Any) -> dict[str, float]:
            peaks, nets, cached = [], [], []
            for _ in range(requests):
                text = text_of()
                cache_before = int(core.engine.status()["cache_bytes"])
                gc.collect()  # count what a request keeps alive, not garbage cycles awaiting collection
                before, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                say(text)
                _, peak = tracemalloc.get_traced_memory()
                gc.collect()
                after, _ = tracemalloc.get_traced_memory()
                peaks.append(float(peak - before))
                nets.append(float(after - before))
                cached.append(float(int(core.engine.status()["cache_bytes"]) - cache_before))
            return {
                "peak_bytes_median": statistics.median(peaks),
                "net_bytes_median": statistics.median(nets),
                "cache_growth_bytes_median": statistics.median(cached),
            }

        # A cache miss keeps its rendering in the LRU (that is the point of the cache), so measure
        # misses with the cache full of them already and report what is kept separately.
        alloc_miss = measure(lambda: SENTENCE.format(n=next(counter)))
        alloc_hit = measure(lambda: "Turn right now.")
        # The same engine without a cache: what synthesis and streaming alone allocate.
        uncached = Engine(core.catalog, core.sink, limits=core.engine.limits, cache=AudioCache(0))
        uncached.subscribe(on_event)
        uncached.start()
        engine, core.engine = core.engine, uncached
        try:
            for _ in range(3):
                say(SENTENCE.format(n=next(counter)))
            alloc_nocache = measure(lambda: SENTENCE.format(n=next(counter)))
        finally:
            core.engine = engine
            uncached.close()
        tracemalloc.stop()
        status = core.engine.status()
    finally:
        core.close()
    return {
        "load_s": load_s,
        "tier": status["tier"],
        "first_alsa_write_ms": {"cache_miss": _summary(latency_miss), "cache_hit": _summary(latency_hit)},
        "allocations": {"cache_miss": alloc_miss, "cache_hit": alloc_hit, "no_cache": alloc_nocache},
        "rendered_samples_per_request": None,
    }


def bench_daemon(board: str, requests: int, folder: Path) -> dict[str, Any]:
    """Part 2: the real mynad on a private bus; Speak → first ALSA write across processes; RSS."""
    from dbus_fast import BusType, Message, MessageType, Variant  # noqa: F401  (BusType documents intent)
    from dbus_fast.aio import MessageBus

    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--print-address=1", "--nofork", "--nopidfile"],
        stdout=subprocess.PIPE, text=True,
    )
    address = bus.stdout.readline().strip() if bus.stdout else ""
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{_asoundrc(folder)}")
    sock = folder / "s.sock"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "myna", "--session-bus", "--board", board, "--socket", str(sock), "--sink", "alsa:tofile",
         "--config", str(folder / "none.yaml")],
        env=env, cwd=REPO, stderr=open(folder / "mynad.log", "w"),
    )

    async def run() -> dict[str, Any]:
        client = await MessageBus(bus_address=address).connect()
        deadline = time.monotonic() + 60
        while True:
            reply = await client.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                              interface="org.freedesktop.DBus", member="NameHasOwner",
                                              signature="s", body=["org.myna.Speech1"]))
            if reply.body[0]:
                break
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError("mynad did not start; see " + str(folder / "mynad.log"))
            await asyncio.sleep(0.05)
        ready_s = time.monotonic() - started
        finished: dict[int, asyncio.Event] = {}

        def on_message(msg: Message) -> None:
            if msg.message_type is MessageType.SIGNAL and msg.member == "JobFinished":
                finished.setdefault(msg.body[0], asyncio.Event()).set()

        client.add_message_handler(on_message)
        await client.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                  interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                                  body=["type='signal',interface='org.myna.Speech1'"]))

        async def speak(n: int) -> float:
            sent = time.monotonic()
            reply = await client.call(Message(destination="org.myna.Speech1", path="/org/myna/Speech1",
                                              interface="org.myna.Speech1", member="Speak", signature="sa{sv}",
                                              body=[SENTENCE.format(n=n), {}]))
            job = reply.body[0]
            await asyncio.wait_for(finished.setdefault(job, asyncio.Event()).wait(), 30)
            status = await client.call(Message(destination="org.myna.Speech1", path="/org/myna/Speech1",
                                               interface="org.myna.Speech1", member="GetStatus"))
            return (status.body[0]["last_first_audio_monotonic"].value - sent) * 1000.0

        for n in range(3):
            await speak(n)
        latencies = [await speak(100 + n) for n in range(requests)]
        client.disconnect()
        return {"ready_s": ready_s, "speak_to_first_alsa_write_ms": _summary(latencies)}

    started = time.monotonic()
    try:
        result = asyncio.run(run())
        fields = {}
        for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024.0
        result["rss_mb"] = fields.get("VmRSS")
        result["peak_rss_mb"] = fields.get("VmHWM")
    finally:
        daemon.terminate()
        daemon.wait(10)
        bus.terminate()
        bus.wait(10)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="generic-x86_64", help="board profile (sets tier, threads, period)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="myna-bench-") as tmp:
        folder = Path(tmp)
        inproc = bench_in_process(args.board, args.requests, folder)
        daemon = bench_daemon(args.board, args.requests, folder)
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, Python {platform.python_version()}".strip(),
        "board": args.board,
        "voice": "placeholder",
        "in_process": inproc,
        "daemon": daemon,
    }
    report["in_process"].pop("rendered_samples_per_request")
    miss, hit = inproc["first_alsa_write_ms"]["cache_miss"], inproc["first_alsa_write_ms"]["cache_hit"]
    am, ah, an = (inproc["allocations"][k] for k in ("cache_miss", "cache_hit", "no_cache"))
    d = daemon["speak_to_first_alsa_write_ms"]
    rows = [
        ("board / tier", f"{args.board} / {inproc['tier']}"),
        ("D-Bus Speak → first ALSA write (daemon), median / p90 ms", f"{d['median']:.1f} / {d['p90']:.1f}"),
        ("speak() → first ALSA write, cache miss, median / p90 ms", f"{miss['median']:.1f} / {miss['p90']:.1f}"),
        ("speak() → first ALSA write, cache hit, median / p90 ms", f"{hit['median']:.1f} / {hit['p90']:.1f}"),
        ("allocated per request, cache miss: transient peak / kept / of which cache", f"{am['peak_bytes_median']/1024:.1f} / {am['net_bytes_median']/1024:.1f} / {am['cache_growth_bytes_median']/1024:.1f} KiB"),
        ("allocated per request, cache hit: transient peak / kept", f"{ah['peak_bytes_median']/1024:.1f} / {ah['net_bytes_median']/1024:.1f} KiB"),
        ("allocated per request, no cache: transient peak / kept", f"{an['peak_bytes_median']/1024:.1f} / {an['net_bytes_median']/1024:.1f} KiB"),
        ("daemon RSS / peak RSS after the requests", f"{daemon['rss_mb']:.1f} MiB / {daemon['peak_rss_mb']:.1f} MiB"),
        ("daemon start → bus name owned", f"{daemon['ready_s']:.2f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"Myna runtime benchmark ({report['machine']}), {args.requests} requests of 20 words")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
