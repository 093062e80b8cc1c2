"""The image store's configuration: which store the settings choose (a directory or an S3
bucket), what a Ray task gets to reopen it (pickled), and the keys both accept. No server here:
tests/integration/test_s3_store.py runs S3Store against one."""

from __future__ import annotations

import base64
import hashlib
import pickle
from pathlib import Path

import pytest
from botocore.awsrequest import AWSRequest

from adapters.media_store import (
    LocalConfig,
    LocalStore,
    S3Config,
    checked_key,
    open_config,
    open_store,
    store_config,
)
from adapters.s3_store import S3Store, _content_md5
from adapters.settings import Settings
from domain.errors import ConfigError

SHA = "ab" * 32


def test_the_default_is_a_directory_under_the_data_dir(tmp_path: Path) -> None:
    s = Settings.from_env({"AISLE_DATA_DIR": str(tmp_path)})
    assert s.media_s3_bucket is None
    assert store_config(s) == LocalConfig(str((tmp_path / "media").resolve()))
    store = open_store(s)
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "media").resolve()
    assert store.path(f"{SHA}/300.jpg") == store.root / SHA / "300.jpg"


def test_media_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({"AISLE_MEDIA_DIR": "pics"})
    assert store_config(s) == LocalConfig(str(tmp_path.resolve() / "pics"))


def test_a_bucket_turns_s3_on() -> None:
    s = Settings.from_env({"AISLE_MEDIA_S3_BUCKET": "aisle-media",
                           "AISLE_MEDIA_S3_REGION": "eu-west-1"})
    assert store_config(s) == S3Config("aisle-media", prefix="", endpoint_url=None,
                                       region="eu-west-1", addressing="auto")
    store = open_store(s)  # makes a client; no request yet, no credentials needed
    assert isinstance(store, S3Store) and store.config == store_config(s)
    assert store.path(f"{SHA}/300.jpg") is None  # served by `get`, not from a file


def test_an_s3_compatible_endpoint_defaults_to_path_style_and_a_prefix_is_normalized() -> None:
    s = Settings.from_env({"AISLE_MEDIA_S3_BUCKET": "media.example",
                           "AISLE_MEDIA_S3_ENDPOINT_URL": "http://minio:9000",
                           "AISLE_MEDIA_S3_PREFIX": "/shop/images/"})
    assert store_config(s) == S3Config("media.example", prefix="shop/images/",
                                       endpoint_url="http://minio:9000", region=None,
                                       addressing="path")
    s = Settings.from_env({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_ADDRESSING":
                           "Virtual", "AISLE_MEDIA_S3_ENDPOINT_URL": "https://r2.example"})
    assert s.media_s3_addressing == "virtual"


@pytest.mark.parametrize(("env", "expect"), [
    ({"AISLE_MEDIA_S3_BUCKET": "Bad_Bucket"}, "AISLE_MEDIA_S3_BUCKET: expected a bucket name"),
    ({"AISLE_MEDIA_S3_BUCKET": "ab"}, "AISLE_MEDIA_S3_BUCKET"),
    ({"AISLE_MEDIA_S3_BUCKET": "a..b"}, "AISLE_MEDIA_S3_BUCKET"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_ENDPOINT_URL": "minio:9000"},
     "AISLE_MEDIA_S3_ENDPOINT_URL: expected a URL with scheme http or https"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_PREFIX": "a/../b"},
     "AISLE_MEDIA_S3_PREFIX"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_PREFIX": "My Images"},
     "AISLE_MEDIA_S3_PREFIX"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_PREFIX": "a//b"},
     "AISLE_MEDIA_S3_PREFIX"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_REGION": "eu west"},
     "AISLE_MEDIA_S3_REGION"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_S3_ADDRESSING": "dns"},
     "AISLE_MEDIA_S3_ADDRESSING must be one of path, virtual, auto"),
    ({"AISLE_MEDIA_S3_BUCKET": "media", "AISLE_MEDIA_DIR": "/srv/media"},
     "set AISLE_MEDIA_DIR or AISLE_MEDIA_S3_BUCKET, not both"),
    ({"AISLE_MEDIA_S3_ENDPOINT_URL": "http://minio:9000"},
     "AISLE_MEDIA_S3_ENDPOINT_URL is set but AISLE_MEDIA_S3_BUCKET is not"),
])
def test_s3_settings_fail_loudly_naming_the_variable(env: dict[str, str], expect: str) -> None:
    with pytest.raises(ConfigError, match=expect):
        Settings.from_env(env)


@pytest.mark.parametrize("cfg", [
    LocalConfig("/srv/media"),
    S3Config("media", prefix="p/", endpoint_url="http://127.0.0.1:9", region="us-east-1",
             addressing="path"),
])
def test_a_store_config_pickles_and_reopens_the_same_store(cfg: LocalConfig | S3Config) -> None:
    back = pickle.loads(pickle.dumps(cfg))  # what a Ray task receives
    assert back == cfg and open_config(back).config == cfg
    assert isinstance(open_config(back), LocalStore if isinstance(cfg, LocalConfig) else S3Store)


@pytest.mark.parametrize("key", [
    "", "/abs/key.jpg", f"{SHA}/../x.jpg", "..", "Upper/300.jpg", "a b.jpg", "sp\u00e9cial.jpg",
])
def test_bad_keys_are_refused_by_both_stores_before_any_request(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="bad object key"):
        checked_key(key)
    with pytest.raises(ValueError, match="bad object key"):
        LocalStore(tmp_path).path(key)
    # an endpoint nobody listens on: a request would fail otherwise than ValueError
    s3 = S3Store(S3Config("media", endpoint_url="http://127.0.0.1:9", region="us-east-1"))
    with pytest.raises(ValueError, match="bad object key"):
        s3.path(key)
    with pytest.raises(ValueError, match="bad object key"):
        s3.read(key)
    with pytest.raises(ValueError, match="bad object key"):
        s3.remove([f"{SHA}/150.jpg", key])  # every key checked before the first delete


def test_s3_keys_carry_the_prefix() -> None:
    s3 = S3Store(S3Config("media", prefix="shop/img/", region="us-east-1"))
    assert s3.object_key(f"originals/{SHA}.png") == f"shop/img/originals/{SHA}.png"
    assert S3Store(S3Config("media", region="us-east-1")).object_key("a/b.jpg") == "a/b.jpg"


def test_local_store_missing_key_is_file_not_found(tmp_path: Path) -> None:
    """The contract S3Store matches (the integration test checks it does)."""
    with pytest.raises(FileNotFoundError):
        LocalStore(tmp_path).read(f"{SHA}/300.jpg")


def test_delete_objects_gets_a_content_md5_for_older_s3_compatible_servers() -> None:
    body = b"<Delete><Object><Key>a</Key></Object><Quiet>true</Quiet></Delete>"
    request = AWSRequest(method="POST", url="http://minio:9000/media?delete", data=body)
    _content_md5(request)
    assert request.headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
