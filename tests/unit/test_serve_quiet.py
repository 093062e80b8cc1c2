"""serve/quiet.py: the demo's Serve settings, an operator's own values kept."""

from serve.quiet import QUIET, quiet


def test_settings_fill_what_the_environment_leaves_unset() -> None:
    env = {"RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.2", "OTHER": "x"}
    quiet(env)
    assert env == {"RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.2", "OTHER": "x",
                   "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000"}
    # slower than Serve's defaults (0.1 s, 100 ms), not switched off (0 disables the cache)
    assert float(QUIET["RAY_SERVE_CONTROL_LOOP_INTERVAL_S"]) > 0.1
    assert int(QUIET["RAY_SERVE_METRICS_EXPORT_INTERVAL_MS"]) > 100


def test_cluster_yaml_starts_every_node_with_them() -> None:
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        for name, value in QUIET.items():
            assert f"{name}={value} " in start, (key, name)
