"""An S3 server for the tests that need one (import `s3_config` into the test module).

By default: moto's standalone server (`moto.server.ThreadedMotoServer`, `moto[server]` in the
test extras) on a free local port, over real HTTP. It is an emulator of the S3 protocol, not
S3: requests are checked for shape and answered as S3 answers them.

With AISLE_TEST_S3_BUCKET set: that existing bucket on a real S3-compatible service instead
(AISLE_TEST_S3_ENDPOINT_URL, unset for AWS itself; AISLE_TEST_S3_REGION; credentials from the
usual AWS variables or profile), under a fresh key prefix per session that is emptied after.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from adapters.media_store import S3Config
from adapters.s3_store import S3Store

AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
           "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE",
           "AWS_CONFIG_FILE")


def aws_env() -> dict[str, str]:
    """The AWS variables set in this process: what a Ray worker needs to reach the server
    (a deployment gives its nodes credentials by environment, profile or role)."""
    return {k: v for k in AWS_ENV if (v := os.environ.get(k))}


def empty(store: S3Store) -> None:
    """Removes everything under the store's prefix."""
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.cfg.bucket, Prefix=store.cfg.prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    if keys:
        store.remove([k.removeprefix(store.cfg.prefix) for k in keys])


@pytest.fixture(scope="session")
def s3_config() -> Iterator[S3Config]:
    """The bucket the tests use: moto's server's, or a real one (see the module's doc)."""
    bucket = os.environ.get("AISLE_TEST_S3_BUCKET", "").strip()
    endpoint = os.environ.get("AISLE_TEST_S3_ENDPOINT_URL", "").strip() or None
    if bucket:
        cfg = S3Config(bucket, prefix=f"aisle-test-{secrets.token_hex(6)}/",
                       endpoint_url=endpoint,
                       region=os.environ.get("AISLE_TEST_S3_REGION", "").strip() or None,
                       addressing="path" if endpoint else "auto")
        yield cfg
        empty(S3Store(cfg))
        return
    if endpoint:
        pytest.fail("AISLE_TEST_S3_ENDPOINT_URL is set: set AISLE_TEST_S3_BUCKET too")
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS_ENV}
    for k in AWS_ENV:  # the emulator's made-up credentials, never the machine's real ones
        os.environ.pop(k, None)
    os.environ.update(AWS_ACCESS_KEY_ID="aisle-test", AWS_SECRET_ACCESS_KEY="aisle-test")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        cfg = S3Config("aisle-media", prefix="img/", endpoint_url=f"http://{host}:{port}",
                       region="us-east-1", addressing="path")
        S3Store(cfg).client.create_bucket(Bucket=cfg.bucket)
        yield cfg
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
