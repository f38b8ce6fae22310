"""Fixtures for driving Cue through Zappa's handler: moto's server and a stage's handler."""

import pytest

from tests.support.aws import MotoServer, point_boto3_at
from tests.support.lambda_harness import Handler, stage_settings_values, write_stage_settings


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dev_settings_dir(tmp_path_factory):
    return write_stage_settings("dev", tmp_path_factory.mktemp("zappa-dev")).parent


@pytest.fixture
def lambda_handler(moto_server, dev_settings_dir, monkeypatch, transactional_db):
    """The real zappa.handler.lambda_handler for the dev stage, its remote_env served by moto's S3."""
    moto_server.reset()
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    point_boto3_at(moto_server)
    values = stage_settings_values(dev_settings_dir / "zappa_settings.py")
    moto_server.put_remote_env(values["REMOTE_ENV"], {"CUE_REMOTE_ENV_LOADED": "1"})
    with Handler(dev_settings_dir, function_name=f"{values['PROJECT_NAME']}-{values['API_STAGE']}") as handler:
        yield handler
