"""`tasksage bench`: synthetic workload, the measured runs, reference loops and report shaping."""
