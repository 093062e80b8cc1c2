"""Ray Serve deployments and the HTTP app. `build_app(args)` composes the application."""

from serve.app import build_app

__all__ = ["build_app"]
