"""The real Azure credential, and the one line a user reads when no credential works.

cmkctl authenticates like the Azure CLI and the SDKs do: azure-identity's DefaultAzureCredential
(environment service principal, workload identity, managed identity, then `az login` and the other
developer sign-ins), against the selected cloud's Microsoft Entra authority. Nothing is excluded:
`AZURE_TOKEN_CREDENTIALS` (azure-identity's own setting, e.g. `dev` or `prod`) narrows the chain.

When the chain fails, azure-identity raises a multi-line ClientAuthenticationError listing every
credential it tried. A user needs one line that says what to do: sign in with `az login` (after
`az cloud set` in a sovereign cloud), or which environment variables are missing. Only variable
NAMES are ever printed, never their values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError

from controller.model import clouds

TENANT = "AZURE_TENANT_ID"
CLIENT = "AZURE_CLIENT_ID"
SECRET = "AZURE_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
CERTIFICATE = "AZURE_CLIENT_CERTIFICATE_PATH"
FEDERATED = "AZURE_FEDERATED_TOKEN_FILE"
_PROOFS = (SECRET, CERTIFICATE, FEDERATED)
_AADSTS = re.compile(r"\bAADSTS\d+\b")
HELP_LIMIT = 300  # errors.map_error keeps the first 300 characters of a credential's message


def no_credential_help(cloud: clouds.Cloud, env: Mapping[str, str], detail: str = "") -> str:
    """One line (at most HELP_LIMIT characters): why no token could be had and what to do about it.

    Names environment variables, never their values.
    """
    step = _cloud_step(cloud)
    refused = _AADSTS.search(detail)
    if refused:
        return (
            f"Microsoft Entra ID ({cloud.authority_host}) refused the credential ({refused.group(0)}): "
            f"check {TENANT}, {CLIENT} and the secret, certificate or federated token, "
            f"or run `az login`{step}"
        )
    present = [n for n in (TENANT, CLIENT, *_PROOFS) if env.get(n, "").strip()]
    missing_ids = [n for n in (TENANT, CLIENT) if n not in present]
    has_proof = any(n in present for n in _PROOFS)
    if present and (missing_ids or not has_proof):
        need = missing_ids + ([f"one of {', '.join(_PROOFS)}"] if not has_proof else [])
        return (
            f"no Azure credential for {cloud.name}: {_and(present)} set but {_and(need)} missing; "
            f"complete them, or unset them and run `az login`{step}"
        )
    if present:  # complete, yet no token: the sign-in itself failed (reachability, a wrong value)
        return (
            f"no Azure credential for {cloud.name}: the identity in {TENANT} and {CLIENT} could not "
            f"sign in at {cloud.authority_host}: check their values and that the host is reachable, "
            f"or unset them and run `az login`{step}"
        )
    return (
        f"no Azure credential for {cloud.name}: run `az login`{step}, or set {TENANT}, {CLIENT} and "
        f"{SECRET} (service principal) or {FEDERATED} (workload identity), or use a managed identity"
    )


def _cloud_step(cloud: clouds.Cloud) -> str:
    if cloud == clouds.DEFAULT:
        return ""
    return f" (after `az cloud set --name {cloud.name}`)"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class GuidedCredential:
    """DefaultAzureCredential whose failure to get a token is one actionable line.

    Still a ClientAuthenticationError (status None): `errors.map_error` maps it like any credential
    failure, so only the words change, never the control flow.
    """

    def __init__(self, inner: Any, *, cloud: clouds.Cloud, env: Mapping[str, str]) -> None:
        self._inner = inner
        self._cloud = cloud
        self._env = dict(env)

    def _fail(self, exc: ClientAuthenticationError) -> ClientAuthenticationError:
        return ClientAuthenticationError(message=no_credential_help(self._cloud, self._env, str(exc)))

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            token: AccessToken = self._inner.get_token(*scopes, **kwargs)
        except ClientAuthenticationError as exc:
            raise self._fail(exc) from None
        return token

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        try:
            info: AccessTokenInfo = self._inner.get_token_info(*scopes, options=options)
        except ClientAuthenticationError as exc:
            raise self._fail(exc) from None
        return info

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> GuidedCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GuidedCredential({type(self._inner).__name__}, cloud={self._cloud.name})"


def default_credential(cloud: clouds.Cloud, env: Mapping[str, str]) -> GuidedCredential:
    """DefaultAzureCredential against the cloud's authority, with the one-line failure message."""
    from azure.identity import DefaultAzureCredential

    return GuidedCredential(DefaultAzureCredential(authority=cloud.authority_host), cloud=cloud, env=env)
