"""For teams downstream of tasksage that run faust apps: Record types of the output topics and an
example agent. Needs the `faust` extra (`pip install 'tasksage[faust]'`)."""
