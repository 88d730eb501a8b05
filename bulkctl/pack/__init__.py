"""Stage 3: valid lines into gzip parts on disk, under the target's limits."""
