"""What people and machines are shown: progress displays, summaries, config."""
