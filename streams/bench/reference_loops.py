"""Reference loops of `tasksage bench`: raw aiokafka, and the worker with processors doing nothing."""

from __future__ import annotations

import asyncio
import signal
import time

from aiokafka import TopicPartition

from processors.contracts.inputs import DECODERS
from processors.failures import Backoff
from processors.pipeline.handler import StreamHandler
from streams.bench.noop import NoopProcessor
from streams.bench.stats import progress_rate
from streams.kafka import make_consumer, make_producer
from streams.runtime import open_runtime, pipeline_config, resolve_endpoints
from streams.settings import Settings

NOOP_ECHO_SUFFIX = ".noop-echo"


async def raw_kafka_loop(
    settings: Settings, bootstrap: str, topics: list[str], out_topic: str, total: int
) -> tuple[int, float]:
    """Consume `topics` from the start and produce every value to `out_topic`, batch by batch,
    the way a hand-written aiokafka service would. Returns (events, seconds) from first progress."""
    consumer = make_consumer(settings, bootstrap, group_id=None)
    producer = make_producer(settings, bootstrap)
    await consumer.start()
    await producer.start()
    try:
        # The producer's partitions_for waits for the topic's metadata (a consumer without a
        # group may not have fetched it yet on Apache Kafka).
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in sorted(await producer.partitions_for(topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        done = 0
        samples: list[tuple[float, int]] = [(time.time(), 0)]
        deadline = time.monotonic() + 300
        while done < total and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=200, max_records=settings.batch_max_records)
            futures = [
                await producer.send(out_topic, r.value, key=r.key)
                for records in fetched.values()
                for r in records
            ]
            if futures:
                await asyncio.gather(*futures)
                done += len(futures)
                samples.append((time.time(), done))
        return progress_rate(samples)
    finally:
        await consumer.stop()
        await producer.stop()


def noop_worker_main() -> None:
    """Entry point of the no-op worker subprocess (settings from the environment)."""
    from streams.commands.session import setup_logging
    from streams.gc_tuning import settle_after_start
    from streams.worker.loop import Worker

    settings = Settings.model_validate({})  # everything from the environment
    setup_logging(settings.log_level)

    async def main() -> None:
        runtime = await open_runtime(settings, resolve_endpoints(settings))
        config = pipeline_config(settings)
        backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        runtime.pipeline.handlers = {
            topic: StreamHandler(
                stream,
                DECODERS[stream],
                NoopProcessor(runtime.pool, config, stream, topic + NOOP_ECHO_SUFFIX),
                max_event_bytes=settings.max_event_bytes,
                backoff=backoff,
            )
            for stream, topic in settings.input_topics.items()
        }
        worker = Worker(runtime)
        settle_after_start(settings.gc_young_threshold)  # as `tasksage worker` does
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        try:
            await worker.run()
        finally:
            await runtime.close()

    asyncio.run(main())
