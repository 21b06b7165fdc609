"""novita-manager: a durable service that manages Novita.ai GPU instances for its users."""

__version__ = "0.1.0"
