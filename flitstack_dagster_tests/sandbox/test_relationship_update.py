"""PUT /v1/organizationRelationships/{id}: a child moves to a new parent; the rules still hold."""

import pytest

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.sandbox.server import SandboxServer


def test_move_a_child_to_a_new_parent_and_refuse_a_cycle():
    with SandboxServer() as sb, PipedriveClient(sb.base_url, sb.api_token) as c:
        a, b, child = (c.create_organization({"name": n}).id for n in ("A", "B", "Child"))
        rel = c.create_organization_relationship({"type": "parent", "rel_owner_org_id": a, "rel_linked_org_id": child})
        moved = c.update_organization_relationship(rel.id, {"rel_owner_org_id": b})
        assert (moved.id, moved.owner_org_id, moved.linked_org_id) == (rel.id, b, child)
        assert [r.owner_org_id for r in c.list_organization_relationships(child)] == [b]
        c.create_organization_relationship({"type": "parent", "rel_owner_org_id": child, "rel_linked_org_id": a})
        with pytest.raises(PipedriveError) as e:  # A under Child under A: a cycle
            c.update_organization_relationship(rel.id, {"rel_owner_org_id": a})
        assert e.value.status == 400
