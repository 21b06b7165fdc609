"""Use cases behind the API: create, get, list, start, stop, delete; idempotency; catalogue."""
