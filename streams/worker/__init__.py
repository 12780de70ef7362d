"""The worker: the consume loop, the publisher and outbox, upkeep loops, log integrity and process tuning."""
