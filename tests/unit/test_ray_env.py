"""serve/ray_env.py: the Serve settings aisle starts Ray with, an operator's own values kept,
and cluster.yaml starting every node with them."""

from pathlib import Path

import yaml

from serve.ray_env import ONE_LOOP, QUIET, SERVE_ENV, serve_env


def test_settings_fill_what_the_environment_leaves_unset() -> None:
    env = {"RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.2", "OTHER": "x",
           "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1"}
    serve_env(env)
    assert env == {"RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.2", "OTHER": "x",
                   "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
                   "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1",
                   "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}
    # slower than Serve's defaults (0.1 s, 100 ms), not switched off (0 disables the cache)
    assert float(QUIET["RAY_SERVE_CONTROL_LOOP_INTERVAL_S"]) > 0.1
    assert int(QUIET["RAY_SERVE_METRICS_EXPORT_INTERVAL_MS"]) > 100
    only = {"OTHER": "x"}
    serve_env(only, ONE_LOOP)  # the test session's cluster: where code runs, not the pace
    assert only == {"OTHER": "x", **ONE_LOOP}


def test_the_names_are_serves_own() -> None:
    """A misspelt name would be ignored by Serve without a word: each is one Serve reads."""
    from ray.serve._private import constants

    source = Path(constants.__file__).read_text()
    for name in SERVE_ENV:
        assert f'"{name}"' in source, name


def test_cluster_yaml_starts_every_node_with_them() -> None:
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        for name, value in SERVE_ENV.items():
            assert f"{name}={value} " in start, (key, name)
        # every node's metrics on the port docs/operations.md tells Prometheus to scrape
        assert "--metrics-export-port=8080" in start.split(), key
