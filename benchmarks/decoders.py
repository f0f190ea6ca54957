"""JSON decoders on the benchmark's bodies: orjson, msgspec and the standard library.

``python -m benchmarks.decoders`` (needs orjson and msgspec: the bench extra). CPU time per
decode, median and range of 5 rounds, decoders interleaved within a round; every decoded
value is dropped at once, as a client does with an event it has handled. Rows:

- pod: the 4.5 KB Pod of W1 and W4;
- list: the 2.2 MB PodList of W2, with the cyclic collector on, and paused as
  ``asyncpod._json.loads`` pauses it for large bodies;
- watch line: one line of the W3 stream, sliced out of its chunk (``bytes``) and, for
  msgspec, decoded from a ``memoryview`` of the chunk without a copy.
"""

from __future__ import annotations

import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._data import write_data

ROUNDS = 5


def _cpu(run: Callable[[], None], count: int) -> float:
    """CPU microseconds per item of ``run`` (which handles ``count`` items)."""
    start = time.process_time()
    run()
    return (time.process_time() - start) / count * 1e6


def _paused(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def paused(body: bytes) -> Any:
        gc.disable()
        try:
            return decode(body)
        finally:
            gc.enable()

    return paused


def main() -> None:
    import msgspec
    import orjson

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder)
        pod = (folder / "pod.json").read_bytes()
        pod_list = (folder / "list.json").read_bytes()
        with (folder / "watch.ndjson").open("rb") as stream:
            chunk = stream.read(8 << 20)
    chunk = chunk[: chunk.rfind(b"\n") + 1]
    bounds = []
    start = 0
    while (end := chunk.find(b"\n", start)) >= 0 and len(bounds) < 2000:
        bounds.append((start, end))
        start = end + 1
    view = memoryview(chunk)
    decoder = msgspec.json.Decoder()
    decoders: dict[str, Callable[[Any], Any]] = {
        "orjson": orjson.loads,
        "msgspec": decoder.decode,
        "json": json.loads,
    }

    def each(decode: Callable[[Any], Any], items: list[Any], repeat: int = 1) -> Callable[[], None]:
        def run() -> None:
            for _ in range(repeat):
                for item in items:
                    decode(item)

        return run

    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for name, decode in decoders.items():
            rows = {
                "pod (us)": _cpu(each(decode, [pod], 2000), 2000),
                "list (ms)": _cpu(each(decode, [pod_list], 3), 3) / 1000,
                "list, collector paused (ms)": _cpu(each(_paused(decode), [pod_list], 3), 3) / 1000,
                "watch line (us)": _cpu(each(decode, [chunk[a:b] for a, b in bounds]), len(bounds)),
            }
            if name == "msgspec":
                rows["watch line, memoryview (us)"] = _cpu(
                    each(decode, [view[a:b] for a, b in bounds]), len(bounds)
                )
            for row, value in rows.items():
                results.setdefault((row, name), []).append(value)
    print(f"orjson {orjson.__version__}, msgspec {msgspec.__version__}; CPU per decode")
    print("| body | decoder | median | min-max |")
    print("| --- | --- | ---: | ---: |")
    for (row, name), values in results.items():
        print(
            f"| {row} | {name} | {statistics.median(values):.1f} | "
            f"{min(values):.1f}-{max(values):.1f} |"
        )


if __name__ == "__main__":
    main()
