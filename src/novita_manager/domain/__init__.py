"""Pure logic without I/O: statuses, operations, offer selection, representations, payloads."""
