"""HTTP layer: routers, request and response schemas, authentication and the error envelope."""
