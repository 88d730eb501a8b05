"""Stage 1: paths and standard input in, raw items or chunk tasks out."""
