"""A sandbox, a client and the hand-made migrated run (handmade.build) for each verification test."""

from __future__ import annotations

import pytest

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.sandbox.server import SandboxServer

from .handmade import build


@pytest.fixture()
def world(tmp_path):
    with (SandboxServer(state_path=None, plan="ultimate", seats=5, port=0) as sb,
          PipedriveClient(sb.base_url, sb.api_token, plan="ultimate", seats=5) as client):
        yield sb, client, build(client, tmp_path)
