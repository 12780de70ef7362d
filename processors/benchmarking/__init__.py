"""Pure helpers of `tasksage bench`: synthetic workload, statistics, report shaping, bulk preload."""
