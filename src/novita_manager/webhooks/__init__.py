"""Outbound webhooks: Standard Webhooks signatures, the SSRF guard and the HTTP sender."""
