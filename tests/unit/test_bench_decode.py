"""The decode micro-benchmark measures every input stream's decoder on events it accepts
(its figures are read from the report, never asserted here)."""

from __future__ import annotations

from pathlib import Path

import orjson

from processors.contracts.inputs import DECODERS, INPUT_STREAMS
from streams.bench import decode


def test_the_workload_events_are_valid_for_their_decoders() -> None:
    batches = decode.payloads(5)
    assert set(batches) == set(DECODERS)
    for stream in INPUT_STREAMS:
        events = [stream.decode(p, decode.MAX_BYTES) for p in batches[stream.name]]
        assert len({e.event_id for e in events}) == 5
        assert all(type(e) is stream.event_type for e in events)


def test_every_stream_gets_a_best_and_a_median(tmp_path: Path) -> None:
    out = tmp_path / "decode.json"
    decode.main(["--events", "3", "--rounds", "3", "--json", str(out)])
    report = decode.measure(3, 3)
    assert set(report) == set(DECODERS) == set(orjson.loads(out.read_bytes()))
    assert all(0 < f["best_us"] <= f["median_us"] for f in report.values())
