"""Stage 2: the target's rules, record by record; the one definition of valid."""
