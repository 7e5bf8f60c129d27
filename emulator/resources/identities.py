"""User-assigned managed identities (Microsoft.ManagedIdentity/userAssignedIdentities): read only.

An identity the estate did not seed answers with the same derived ids a cluster create assigns it,
so a plan and the create that follows agree on its principal."""

from __future__ import annotations

from emulator.http import Request, Response
from emulator.resources.clusters import _resolve_identity
from emulator.resources.common import _rg_key
from emulator.state import Emulator


def get_identity(em: Emulator, req: Request, sub: str, rg: str, name: str) -> Response:
    """`GET` of one identity: its principal and client ids and the tenant."""
    if not req.q("api-version"):
        return Response(400)
    rid = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity"
        f"/userAssignedIdentities/{name}"
    )
    _, resolved = _resolve_identity(em, {"type": "UserAssigned", "userAssignedIdentities": {rid: {}}})
    group = em.resource_groups.get(_rg_key(sub, rg))
    return Response(
        200,
        {
            "id": rid,
            "name": name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": group["location"] if group else "eastus",
            "tags": {},
            "properties": {
                "tenantId": em.tenant_id,
                "principalId": resolved[rid]["principalId"],
                "clientId": resolved[rid]["clientId"],
            },
        },
    )
