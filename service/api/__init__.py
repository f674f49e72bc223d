"""HTTP layer: routers, dependencies, middleware. Thin: the logic lives in the domain services."""
