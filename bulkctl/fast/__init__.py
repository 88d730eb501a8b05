"""Stage 2-3 in worker processes: check/'s verdicts, batch by batch, and lane members packed."""
