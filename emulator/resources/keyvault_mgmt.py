"""Key Vault management on Resource Manager (`Microsoft.KeyVault/vaults`): create, update, delete,
list and access policies (docs/azure-wire.md §10). Managed HSMs exist only in the data plane here:
their `Microsoft.KeyVault/managedHSMs` resource is not served."""

from __future__ import annotations

from typing import Any

from emulator.http import Request, Response, arm_error
from emulator.keyvault import (
    _VAULT_NAME_RE,
    ARM_API_VERSIONS,
    Vault,
    VaultRegistry,
    _iso,
    _norm_location,
    _parse_policy,
)


def serve(
    reg: VaultRegistry, req: Request, subscription: str, resource_group: str, vault_name: str | None
) -> Response:
    api = req.q("api-version")
    if api is None:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if api not in ARM_API_VERSIONS:
        return arm_error(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location 'global' and API version '{api}' "
            f"for type 'vaults'. The supported api-versions are '{', '.join(ARM_API_VERSIONS)}'.",
        )
    if vault_name is None:
        if req.method != "GET":
            return arm_error(
                405, "MethodNotAllowed", f"{req.method} is not allowed on the vaults collection."
            )
        vaults = [
            _vault_json(reg, v, api)
            for v in reg.vaults.values()
            if v.subscription.lower() == subscription.lower()
            and (not resource_group or v.resource_group.lower() == resource_group.lower())
            and not v.managed_hsm
        ]
        return Response(200, {"value": vaults})
    tail = _arm_tail(req.path, vault_name)
    existing = reg.vaults.get(vault_name.lower())
    mine = (
        existing
        if existing is not None
        and not existing.managed_hsm
        and existing.subscription.lower() == subscription.lower()
        and existing.resource_group.lower() == resource_group.lower()
        else None
    )
    if tail:
        if len(tail) == 2 and tail[0].lower() == "accesspolicies" and req.method in ("PUT", "PATCH"):
            if mine is None:
                return _arm_not_found(vault_name, resource_group)
            return _arm_access_policy(reg, mine, tail[1].lower(), req)
        return arm_error(404, "NotFound", f"The emulator does not serve {req.path}.")
    if req.method == "GET":
        return (
            Response(200, _vault_json(reg, mine, api)) if mine else _arm_not_found(vault_name, resource_group)
        )
    if req.method == "PUT":
        if existing is not None and mine is None:
            return arm_error(
                409,
                "VaultAlreadyExists",
                f"The vault name '{vault_name}' is already in use. Vault names are globally unique so it "
                "is possible that the name is already taken.",
            )
        return _arm_put(reg, req, subscription, resource_group, vault_name, mine)
    if req.method == "PATCH":
        if mine is None:
            return _arm_not_found(vault_name, resource_group)
        return _arm_patch(reg, req, mine)
    if req.method == "DELETE":
        if mine is not None:
            del reg.vaults[vault_name.lower()]
            reg.changed = True  # every cluster on this vault loses its key (rule K2)
            return Response(200)
        return Response(204)
    return arm_error(405, "MethodNotAllowed", f"{req.method} is not allowed on a vault.")


def _arm_tail(path: str, vault_name: str) -> list[str]:
    """Segments after `/vaults/{name}` (e.g. ["accessPolicies", "add"])."""
    segs = [s for s in path.split("/") if s]
    lower = [s.lower() for s in segs]
    for i in range(len(lower) - 1):
        if lower[i] == "vaults" and lower[i + 1] == vault_name.lower():
            return segs[i + 2 :]
    return []


def _arm_not_found(name: str, resource_group: str) -> Response:
    return arm_error(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.KeyVault/vaults/{name}' under resource group '{resource_group}' was "
        "not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _vault_json(
    reg: VaultRegistry, v: Vault, api: str | None = None, *, creating: bool = False
) -> dict[str, Any]:
    """The vault as the api-version shows it. Recorded (2020, api 2019-09-01; 2023, api 2023-02-01):
    switches never set are absent, the retention only with soft delete; `systemData` and
    `publicNetworkAccess` appear in the newer api-version (the emulator switches at 2021-04-01-preview,
    the next one it accepts); a create answers `RegisteringDns` and a vaultUri without the slash."""
    props: dict[str, Any] = {
        "sku": {"family": "A", "name": v.sku},
        "tenantId": v.tenant_id,
        "accessPolicies": [p.to_json() for p in v.access_policies],
        "enabledForDeployment": False,
        "enableSoftDelete": v.soft_delete,
    }
    if v.soft_delete:
        props["softDeleteRetentionInDays"] = v.retention_days
    if v.rbac:
        props["enableRbacAuthorization"] = True
    props["vaultUri"] = v.uri.rstrip("/") if creating else v.uri
    props["provisioningState"] = "RegisteringDns" if creating else "Succeeded"
    newer = (api or ARM_API_VERSIONS[-1]) >= "2021-04-01-preview"
    if newer:
        props["publicNetworkAccess"] = "Enabled"
    props.update(v.extra_props)
    if v.purge_protection is not None:  # absent when never set (§10)
        props["enablePurgeProtection"] = v.purge_protection
    out: dict[str, Any] = {
        "id": v.arm_id,
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": dict(v.tags),
    }
    if newer:
        created = v.created_at or reg.clock()
        modified = v.modified_at or created
        out["systemData"] = {
            "createdBy": "user@example.com",
            "createdByType": "User",
            "createdAt": _iso(created),
            "lastModifiedBy": "user@example.com",
            "lastModifiedByType": "User",
            "lastModifiedAt": _iso(modified),
        }
    out["properties"] = props
    return out


def _body(reg: VaultRegistry, req: Request) -> dict[str, Any] | Response:
    try:
        body = req.json()
    except ValueError:
        return arm_error(
            400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
        )
    if not isinstance(body, dict):
        return arm_error(
            400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
        )
    return body


def _apply_props(reg: VaultRegistry, v: Vault, props: dict[str, Any], *, creating: bool) -> Response | None:
    """Apply vault properties, refusing the irreversible switches the service refuses (§10)."""
    if "sku" in props and props["sku"] is not None:
        sku = props["sku"]
        if not isinstance(sku, dict) or str(sku.get("name", "")).lower() not in ("standard", "premium"):
            return arm_error(400, "BadRequest", "The property 'sku.name' must be 'standard' or 'premium'.")
        v.sku = str(sku["name"])
    if props.get("tenantId") is not None:
        v.tenant_id = str(props["tenantId"])
    sd = props.get("enableSoftDelete")
    if sd is not None:
        if not sd and v.soft_delete and not creating:
            return arm_error(
                400,
                "BadRequest",
                'The property "enableSoftDelete" has been set to true previously and cannot be set to false.',
            )
        v.soft_delete = bool(sd)
    pp = props.get("enablePurgeProtection")
    if pp is not None:
        if not pp and v.purge_protection:
            return arm_error(
                400,
                "BadRequest",
                'The property "enablePurgeProtection" cannot be set to false. Enabling the purge '
                "protection for a vault is an irreversible action.",
            )
        v.purge_protection = True if pp else v.purge_protection
    if v.purge_protection and not v.soft_delete:
        return arm_error(
            400, "BadRequest", "Purge protection can only be enabled on a vault with soft delete enabled."
        )
    days = props.get("softDeleteRetentionInDays")
    if days is not None:
        if not isinstance(days, int) or not 7 <= days <= 90:
            return arm_error(400, "BadRequest", "softDeleteRetentionInDays must be between 7 and 90.")
        v.retention_days = days
    if props.get("enableRbacAuthorization") is not None:
        v.rbac = bool(props["enableRbacAuthorization"])
    if props.get("accessPolicies") is not None:
        try:
            v.access_policies = [_parse_policy(p, v.tenant_id) for p in props["accessPolicies"]]
        except (ValueError, TypeError) as exc:
            return arm_error(400, "BadRequest", f"Invalid accessPolicies: {exc}")
    for name in (
        "enabledForDeployment",
        "enabledForDiskEncryption",
        "enabledForTemplateDeployment",
        "publicNetworkAccess",
        "networkAcls",
    ):
        if props.get(name) is not None:
            v.extra_props[name] = props[name]
    return None


def _arm_put(
    reg: VaultRegistry,
    req: Request,
    subscription: str,
    resource_group: str,
    name: str,
    existing: Vault | None,
) -> Response:
    body = _body(reg, req)
    if isinstance(body, Response):
        return body
    if not _VAULT_NAME_RE.match(name):
        return arm_error(
            400,
            "VaultNameNotValid",
            f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric "
            "characters. The name must begin with a letter, end with a letter or digit, and not contain "
            "consecutive hyphens.",
        )
    location = body.get("location")
    if not isinstance(location, str) or not location:
        return arm_error(400, "LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, dict) or not props.get("tenantId") or not props.get("sku"):
        return arm_error(400, "BadRequest", "The properties 'tenantId' and 'sku' are required.")
    if existing is not None and _norm_location(existing.location) != _norm_location(location):
        return arm_error(
            400,
            "InvalidResourceLocation",
            f"The resource '{name}' already exists in location '{existing.location}' in resource group "
            f"'{resource_group}'. A resource with the same name cannot be created in location "
            f"'{location}'. Please select a new resource name.",
        )
    work = Vault(
        name=name,
        subscription=subscription,
        resource_group=resource_group,
        location=location,
        tenant_id=str(props["tenantId"]),
        cloud=reg.cloud,
    )
    if existing is not None:  # PUT replaces, but irreversible switches are judged against the old state
        work.soft_delete, work.purge_protection = existing.soft_delete, existing.purge_protection
        work.retention_days, work.keys = existing.retention_days, existing.keys
        work.role_assignments = existing.role_assignments
        work.caller_denied, work.enforce_caller = existing.caller_denied, existing.enforce_caller
        work.unavailable_since = existing.unavailable_since
    err = _apply_props(reg, work, props, creating=existing is None)
    if err is not None:
        return err
    work.tags = dict(body.get("tags") or {})
    now = reg.clock()
    work.created_at = existing.created_at if existing is not None else now
    work.modified_at = now
    reg.vaults[name.lower()] = work
    reg.changed = True
    # recorded: 200 on create too, while DNS registers (an LRO the SDK polls to Succeeded)
    return Response(200, _vault_json(reg, work, req.q("api-version"), creating=existing is None))


def _arm_patch(reg: VaultRegistry, req: Request, v: Vault) -> Response:
    body = _body(reg, req)
    if isinstance(body, Response):
        return body
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        return arm_error(400, "BadRequest", "'properties' must be an object.")
    # Validate on a copy so a refused PATCH changes nothing.
    trial = Vault(**{f: getattr(v, f) for f in v.__dataclass_fields__})
    trial.access_policies = list(v.access_policies)
    trial.extra_props = dict(v.extra_props)
    err = _apply_props(reg, trial, props, creating=False)
    if err is not None:
        return err
    if body.get("tags") is not None:
        trial.tags = dict(body["tags"])
    reg.vaults[v.name.lower()] = trial
    reg.changed = True
    trial.modified_at = reg.clock()
    return Response(200, _vault_json(reg, trial, req.q("api-version")))


def _arm_access_policy(reg: VaultRegistry, v: Vault, kind: str, req: Request) -> Response:
    """PUT .../accessPolicies/{add|replace|remove} (rule K2: removal revokes a cluster)."""
    if kind not in ("add", "replace", "remove"):
        return arm_error(
            400, "BadRequest", f"The operation kind '{kind}' is invalid; use add, replace or remove."
        )
    body = _body(reg, req)
    if isinstance(body, Response):
        return body
    raw = (body.get("properties") or {}).get("accessPolicies")
    if not isinstance(raw, list):
        return arm_error(400, "BadRequest", "properties.accessPolicies is required.")
    try:
        policies = [_parse_policy(p, v.tenant_id) for p in raw]
    except (ValueError, TypeError) as exc:
        return arm_error(400, "BadRequest", f"Invalid accessPolicies: {exc}")
    for new in policies:
        if kind == "add":
            reg.merge_policy(v, new)
            continue
        match = [
            p
            for p in v.access_policies
            if p.object_id.lower() == new.object_id.lower() and p.application_id == new.application_id
        ]
        if kind == "replace":
            for p in match:
                v.access_policies.remove(p)
            v.access_policies.append(new)
            continue
        for p in match:  # remove: drop the listed permissions; an emptied entry disappears
            for k, perms in new.permissions.items():
                gone = {x.lower() for x in perms}
                p.permissions[k] = [x for x in p.permissions.get(k, []) if x.lower() not in gone]
            if not any(p.permissions.values()):
                v.access_policies.remove(p)
    reg.changed = True
    return Response(
        200,
        {
            "id": f"{v.arm_id}/accessPolicies/{kind}",
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "location": v.location,
            "properties": {"accessPolicies": [p.to_json() for p in policies]},
        },
    )
