"""The consumer side: the job loop, running a job, presence and recovery of dead consumers."""
