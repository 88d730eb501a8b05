"""Stage 5: the local job store, remote jobs, polling, and what jobs/status show."""
