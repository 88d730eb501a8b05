"""Stage 4: the runner; sessions, lanes, retries, deadlines and HTTP, for any Remote."""
