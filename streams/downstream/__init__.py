"""For teams downstream of tasksage that run faust apps: Record types of the output topics and an
example agent. Needs the `faust` extra in a virtualenv of its own (`make faust`)."""
