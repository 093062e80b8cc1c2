"""serve_config.yaml, the operators' Serve config, is valid for this Ray and names the
deployments the app has (each with autoscaling), and the Ranker's user_config is what its
`reconfigure` reads."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from serve.app import Gateway
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
