"""bulkctl: move business objects from files and database dumps into bulk ingestion APIs."""

__version__ = "0.1.0"
