"""serve_config.yaml, the operators' Serve config, is valid for this Ray and names the
deployments the app has (each with autoscaling), and the Ranker's user_config is what its
`reconfigure` reads; Serve's per-request access log is off unless AISLE_SERVE_ACCESS_LOG=ON."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve import Application
from ray.serve.schema import ServeDeploySchema

from adapters.settings import Settings
from domain.errors import ConfigError
from serve.app import Gateway, build_app
from serve.ranker import RankerDeployment

CONFIG = Path(__file__).resolve().parents[2] / "serve_config.yaml"


def test_serve_config_validates_and_covers_every_deployment() -> None:
    raw = yaml.safe_load(CONFIG.read_text())
    schema = ServeDeploySchema.parse_obj(raw)
    (app,) = schema.applications
    assert app.import_path == "serve:build_app"
    names = {d.name for d in app.deployments}
    assert names == {Gateway.name, RankerDeployment.name}
    for d in app.deployments:
        assert d.autoscaling_config, d.name
    ranker = next(d for d in app.deployments if d.name == RankerDeployment.name)
    assert set(ranker.user_config or {}) == {"max_batch_size", "batch_wait_timeout_s"}


def _access_logs(app: Application) -> dict[str, bool]:
    """Each deployment of the app (the Gateway and the Ranker it is bound to): whether Serve
    writes its per-request access log."""
    gateway = app._bound_deployment
    ranker = gateway.init_args[1]._bound_deployment
    return {d.name: d._deployment_config.logging_config["enable_access_log"]
            for d in (gateway, ranker)}


def test_serve_access_log_is_off_unless_asked() -> None:
    assert _access_logs(build_app(Settings.from_env({}))) == {"Gateway": False, "Ranker": False}
    assert _access_logs(build_app({"AISLE_SERVE_ACCESS_LOG": "OFF"})) == {
        "Gateway": False, "Ranker": False}
    on = build_app({"AISLE_SERVE_ACCESS_LOG": "on"})
    assert _access_logs(on) == {"Gateway": True, "Ranker": True}
    with pytest.raises(ConfigError, match="AISLE_SERVE_ACCESS_LOG"):
        build_app({"AISLE_SERVE_ACCESS_LOG": "sometimes"})
