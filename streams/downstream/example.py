"""An example downstream faust app: consume task-schedules and act on each schedule.

    python -m streams.downstream.example worker -l info

Configured like tasksage: KAFKA_BOOTSTRAP_SERVERS, and TASKSAGE_TOPIC_TASK_SCHEDULES for the
topic (default task-schedules). Each schedule is printed as one JSON object on stdout, which
faust routes through its log: what a team would replace with dispatching the task to the chosen
agent. Schedules may repeat after a tasksage crash, always with the same bytes: the app keeps the
event ids it has acted on and skips a repeat, as the README's delivery section asks of consumers.
"""

from __future__ import annotations

import json
import os
import sys

import faust

from streams.downstream.records import TaskSchedule

app = faust.App(
    os.environ.get("TASKSAGE_DOWNSTREAM_APP_ID", "tasksage-downstream-example"),
    broker="kafka://" + os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
    value_serializer="json",
    topic_allow_declare=False,  # tasksage creates its topics; this app only reads
    web_enabled=False,
    # A join on Tansu waits half the session timeout: faust's 60 s default would hold it 30 s.
    broker_session_timeout=float(os.environ.get("TASKSAGE_DOWNSTREAM_SESSION_TIMEOUT_S", "10")),
    broker_heartbeat_interval=1.0,
)
schedules = app.topic(
    os.environ.get("TASKSAGE_TOPIC_TASK_SCHEDULES", "task-schedules"), value_type=TaskSchedule
)
seen: set[str] = set()


@app.agent(schedules)
async def dispatch(stream: faust.StreamT[TaskSchedule]) -> None:
    async for schedule in stream:
        if schedule.event_id in seen:
            continue  # a repeat: the same decision, published again
        seen.add(schedule.event_id)
        best = max(schedule.alternatives, key=lambda a: a.score, default=None)
        line = {
            "task_id": schedule.task_id,
            "agent": schedule.agent,
            "model": schedule.model,
            "success_probability": schedule.success_probability,
            "expected_cost_usd": schedule.expected_cost_usd,
            "alternatives": len(schedule.alternatives),
            "best_scored": None if best is None else f"{best.agent}/{best.model}",
            "event_id": schedule.event_id,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    app.main()
