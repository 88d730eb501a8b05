"""`bulkctl validate`: placeholder until the reading pipeline lands."""
