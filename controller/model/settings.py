"""Every environment knob of cmkctl in one validated object (pydantic-settings).

Why one object: a knob read in five places with five fallbacks turns a typo into a silent default
(`CMKCTL_AZURE_TIMEOUT=1O` meant the 60 s default). Here a bad value is an error that names the
variable and what it expects, raised before anything talks to Azure. Empty values count as unset.

`Settings()` reads the process environment; `Settings.read(env)` validates a given mapping only
(tests and the emulator wrapper pass their own), with exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from controller.errors import CmkError


class SettingsError(CmkError):
    """An environment variable holds a value cmkctl cannot use."""


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=name)


class Settings(BaseSettings):
    """The knobs, by their environment variable names (see `cmkctl --help` and README)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    # where the journal and lock live: DIR, local:DIR or azureblob://ACCOUNT/CONTAINER[/BLOB]
    state: str | None = _env("CMKCTL_STATE")
    # the controller's local directory (git clone) when the journal is in a blob
    workdir: str | None = _env("CMKCTL_WORKDIR")
    # what-if clock for planning only ("plan as of"): ISO-8601
    now: datetime | None = _env("CMKCTL_NOW")
    debug: bool = Field(default=False, validation_alias="CMKCTL_DEBUG")
    # the local Azure emulator (tests, demo, trying it by hand)
    emulator: str | None = _env("CMKCTL_EMULATOR")
    ca_bundle: str | None = _env("CMKCTL_CA_BUNDLE")
    # SDK transport: seconds between LRO polls, retries of one request, read timeout
    polling_interval: float | None = Field(default=None, ge=0, validation_alias="CMKCTL_POLLING_INTERVAL")
    azure_retry_total: int | None = Field(
        default=None, ge=0, le=20, validation_alias="CMKCTL_AZURE_RETRY_TOTAL"
    )
    azure_timeout: float = Field(default=60.0, gt=0, validation_alias="CMKCTL_AZURE_TIMEOUT")
    # ARM's per-subscription refill rates (requests per second) our requests are paced to; unset: ARM's
    # own (reads 25, writes 10), and no pacing under the emulator unless set (its time may be scaled)
    arm_read_rate: float | None = Field(default=None, gt=0, validation_alias="CMKCTL_ARM_READ_RATE")
    arm_write_rate: float | None = Field(default=None, gt=0, validation_alias="CMKCTL_ARM_WRITE_RATE")
    # executor: wait for our own operation, for someone else's running one (C6/W5), first retry wait
    operation_timeout: float = Field(default=6 * 3600.0, gt=0, validation_alias="CMKCTL_OPERATION_TIMEOUT")
    busy_timeout: float = Field(default=3 * 3600.0, ge=0, validation_alias="CMKCTL_BUSY_TIMEOUT")
    retry_backoff: float = Field(default=2.0, ge=0, validation_alias="CMKCTL_RETRY_BACKOFF")
    # the git source's credentials file (controller mode), and the azureblob state's shared key
    git_credentials_file: str | None = _env("CMKCTL_GIT_CREDENTIALS_FILE")
    storage_key: SecretStr | None = _env("AZURE_STORAGE_KEY")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}
        return data

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Validated knobs from `env` (the process environment when None); SettingsError if bad."""
        try:
            if env is None:
                return cls()
            names = _variable_names()
            return cls.model_validate({k: v for k, v in env.items() if k in names})
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None


def _variable_names() -> set[str]:
    return {str(info.validation_alias) for info in Settings.model_fields.values()}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        name = ".".join(str(x) for x in err.get("loc", ())) or "environment"
        value = err.get("input")
        shown = "(hidden)" if name == "AZURE_STORAGE_KEY" else repr(value)[:60]
        parts.append(f"{name}={shown}: {err.get('msg', 'invalid value')}")
    return "invalid environment: " + "; ".join(parts)


# Every variable cmkctl reads, with what it does: the --help of each command lists those that affect
# it (controller.cli.app), and a test keeps this in step with the fields above.
ENVIRONMENT: dict[str, str] = {
    "CMKCTL_STATE": "journal and lock when --state is not given: DIR or azureblob://ACCOUNT/CONTAINER[/BLOB]",
    "CMKCTL_WORKDIR": "the controller's local directory when the state is a blob",
    "CMKCTL_NOW": "what-if planning clock, ISO-8601 (plan as of; apply refuses it)",
    "CMKCTL_DEBUG": "1 shows a traceback with an internal error",
    "CMKCTL_EMULATOR": "talk to the local Azure emulator at this address instead of Azure",
    "CMKCTL_CA_BUNDLE": "CA certificates to trust (the emulator's)",
    "CMKCTL_POLLING_INTERVAL": "seconds between polls of a long operation",
    "CMKCTL_AZURE_RETRY_TOTAL": "retries of one request",
    "CMKCTL_AZURE_TIMEOUT": "read timeout of one request, seconds",
    "CMKCTL_ARM_READ_RATE": "Resource Manager reads per second per subscription (default 25)",
    "CMKCTL_ARM_WRITE_RATE": "Resource Manager writes per second per subscription (default 10)",
    "CMKCTL_OPERATION_TIMEOUT": "seconds to wait for one of our own operations",
    "CMKCTL_BUSY_TIMEOUT": "seconds to wait for someone else's running operation (C6, W5)",
    "CMKCTL_RETRY_BACKOFF": "first retry wait, seconds",
    "CMKCTL_GIT_CREDENTIALS_FILE": "git credentials for --source (a mounted Secret)",
    "AZURE_CLOUD": "the Azure cloud when --cloud is not given",
    "AZURE_STORAGE_KEY": "shared key of an azureblob:// state (else the Azure sign-in)",
    "AZURE_TENANT_ID": "service principal or workload identity sign-in (else managed identity or az login)",
    "AZURE_CLIENT_ID": "service principal, workload or user-assigned managed identity",
    "AZURE_CLIENT_SECRET": "service principal secret",
    "AZURE_CLIENT_CERTIFICATE_PATH": "service principal certificate",
    "AZURE_FEDERATED_TOKEN_FILE": "workload identity token",
    "AZURE_TOKEN_CREDENTIALS": "azure-identity's choice of sign-in methods (dev, prod)",
}

ENVIRONMENT_HELP = (
    "Environment: "
    + "; ".join(f"{name} ({text})" for name, text in ENVIRONMENT.items())
    + ". A bad value is an error naming the variable."
)
