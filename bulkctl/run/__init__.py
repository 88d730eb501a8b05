"""The use cases (validate, push, resume) as plain Python: what the CLI calls."""
