"""Schedules in Redis: the scheduler that fires them (run by each worker supervisor), and their
state for people and tools."""
