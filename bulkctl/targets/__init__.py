"""Target drivers: one module per API, holding only its URLs, payloads and status codes."""
