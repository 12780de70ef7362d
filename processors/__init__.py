"""tasksage processors: the decision logic and the I/O adapters it runs behind."""
