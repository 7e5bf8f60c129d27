"""Reading the recorded Azure sessions in `recordings/` (three recorder formats) into one shape, the
key-path comparison the replay uses, a transport that plays recorded answers back to the real SDKs,
and the tally the session summary prints.

Why one shape: azure-cli (VCR YAML), azure-powershell (HttpRecorder JSON) and azure-sdk-for-python
(test-proxy JSON) store the same facts differently; the tests should speak of interactions, not of
recorder formats.
"""

from __future__ import annotations

import functools
import json
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
import yaml
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.core.pipeline.transport._base import HttpRequest as _LegacyRequest
from requests.structures import CaseInsensitiveDict

RECORDINGS = Path(__file__).parent / "recordings"
ARM = "https://management.azure.com"


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its answer, whatever recorder wrote it."""

    recording: str  # path under recordings/
    index: int  # position in the file (0-based), as the provenance README counts
    method: str
    url: str  # absolute
    request_body: Any  # parsed JSON, raw text, or None
    status: int
    headers: dict[str, list[str]]  # lower-case names
    body: Any  # parsed JSON, raw text, or None when empty
    raw_body: str  # the body text as recorded ("" when empty)

    @property
    def host(self) -> str:
        return (urllib.parse.urlsplit(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.url).query, keep_blank_values=True))

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def date(self) -> datetime | None:
        """When Azure answered (the response's Date header)."""
        value = self.header("date")
        if not value:
            return None
        return parsedate_to_datetime(value).astimezone(UTC)

    @property
    def label(self) -> str:
        return f"{self.recording}[{self.index}] {self.method} {self.path} -> {self.status}"


def _json_or_text(value: Any) -> tuple[Any, str]:
    """(parsed body, raw text): JSON text is parsed; empty is None; other text stays text."""
    if value is None:
        return None, ""
    if isinstance(value, dict | list):
        return value, json.dumps(value)
    text = str(value)
    if text.strip() == "":
        return None, text
    try:
        return json.loads(text), text
    except ValueError:
        return text, text


def _headers(raw: Mapping[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in (raw or {}).items():
        out[str(k).lower()] = [str(x) for x in v] if isinstance(v, list) else [str(v)]
    return out


@functools.cache
def load(recording: str) -> tuple[Interaction, ...]:
    """All interactions of one file under recordings/, in file order (parsed once per session)."""
    return tuple(_load(recording))


def _load(recording: str) -> list[Interaction]:
    path = RECORDINGS / recording
    text = path.read_text(encoding="utf-8")
    out: list[Interaction] = []
    if path.suffix == ".yaml":
        for i, it in enumerate(yaml.safe_load(text)["interactions"]):
            rq, rs = it["request"], it["response"]
            body, raw = _json_or_text((rs.get("body") or {}).get("string"))
            req_body, _ = _json_or_text(rq.get("body"))
            status = int(rs["status"]["code"])
            headers = _headers(rs.get("headers"))
            method = rq["method"].upper()
            out.append(Interaction(recording, i, method, rq["uri"], req_body, status, headers, body, raw))
        return out
    for i, e in enumerate(json.loads(text)["Entries"]):
        url = e["RequestUri"]
        if url.startswith("/"):  # the PowerShell recorder keeps ARM paths only
            url = ARM + url
        status = e.get("StatusCode")
        if status is None:  # PowerShell writes the status as a name ("OK", "Created", "NotFound")
            status = _STATUS_NAMES[str(e["StatusCode"])]
        body, raw = _json_or_text(e.get("ResponseBody"))
        req_body, _ = _json_or_text(e.get("RequestBody"))
        headers = _headers(e.get("ResponseHeaders"))
        method = e["RequestMethod"].upper()
        out.append(Interaction(recording, i, method, url, req_body, int(status), headers, body, raw))
    return out


_STATUS_NAMES = {"OK": 200, "Created": 201, "Accepted": 202, "NoContent": 204, "NotFound": 404}


def example(name: str) -> dict[str, Any]:
    """A REST-spec example file (request parameters and example responses)."""
    data = json.loads((RECORDINGS / "rest-api-specs-examples" / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# -- comparing shapes ---------------------------------------------------------------------------------

# Maps whose keys are data, not shape: tag names, identity ids, JWT claim names.
OPAQUE_MAPS = frozenset({"tags", "userAssignedIdentities", "claims"})


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value: `a.b`, list elements as `a[]` (union over the elements).

    Values are ignored (they differ between any two runs); the set of paths is the shape a client
    parses. The keys of OPAQUE_MAPS are data, so only the map itself counts.
    """
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            out.add(path)
            if k not in OPAQUE_MAPS:
                out |= key_paths(v, path)
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, f"{prefix}[]")
    return out


def shape_difference(recorded: Any, actual: Any) -> tuple[set[str], set[str]]:
    """(paths the recording has and the answer lacks, paths the answer has and the recording lacks)."""
    want, have = key_paths(recorded), key_paths(actual)
    return want - have, have - want


# -- playing recorded answers back to the real SDKs -----------------------------------------------------


def is_rest(request: Any) -> bool:
    """azure.core.rest requests (TypeSpec-generated SDKs) want azure.core.rest responses."""
    return not isinstance(request, _LegacyRequest)


class ReplayTransport(HttpTransport):  # type: ignore[misc]
    """An azure-core transport that answers each request with the next recorded interaction of the same
    method and path (case-insensitive). The SDK, its pipeline and its deserialisers are the real ones;
    only the network is a recording, as in the SDKs' own playback tests. A request the recording does not
    have fails the test instead of being guessed. `repeat_last` answers polls past the end of a
    recording with its last poll (an operation still running)."""

    def __init__(self, interactions: Iterable[Interaction], *, repeat_last: bool = False) -> None:
        self._pending = list(interactions)
        self._last: dict[tuple[str, str], Interaction] = {}
        self._repeat = repeat_last
        self.sent: list[str] = []

    def __enter__(self) -> ReplayTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> Any:
        key = (request.method.upper(), urllib.parse.urlsplit(request.url).path.lower().rstrip("/"))
        self.sent.append(f"{request.method} {request.url}")
        for i, it in enumerate(self._pending):
            if (it.method, urllib.parse.urlsplit(it.url).path.lower().rstrip("/")) == key:
                del self._pending[i]
                self._last[key] = it
                return self._respond(request, it)
        if self._repeat and key in self._last:
            return self._respond(request, self._last[key])
        raise AssertionError(f"the recording has no answer for {request.method} {request.url}")

    @staticmethod
    def _respond(request: Any, it: Interaction) -> Any:
        resp = requests.Response()
        resp.status_code = it.status
        resp.reason = "recorded"
        resp.url = request.url
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for k, v in it.headers.items():
            if k not in ("content-length", "transfer-encoding", "content-encoding"):
                headers[k] = ", ".join(v)
        resp.headers = headers
        resp._content = it.raw_body.encode()
        if is_rest(request):  # what RequestsTransport answers to azure.core.rest requests
            from azure.core.rest._requests_basic import RestRequestsTransportResponse

            rest = RestRequestsTransportResponse(request=request, internal_response=resp)
            rest._content = resp._content  # read already: nothing to stream
            rest._is_closed = True
            return rest
        return RequestsTransportResponse(request, resp)


# -- the tally the session summary prints ----------------------------------------------------------------


@dataclass
class RecordingTally:
    interactions: int = 0
    replayed: int = 0
    matched: int = 0
    skipped: list[str] = field(default_factory=list)  # "[i] reason"
    documented: list[str] = field(default_factory=list)  # "[i] what differs on purpose"
    mismatched: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """Filled by the tests, printed by conftest.pytest_terminal_summary."""

    replay: dict[str, RecordingTally] = field(default_factory=dict)
    product_bodies: dict[str, int] = field(default_factory=dict)  # recording -> bodies parsed

    def recording(self, name: str) -> RecordingTally:
        return self.replay.setdefault(name, RecordingTally())

    def parsed(self, recording: str, count: int = 1) -> None:
        self.product_bodies[recording] = self.product_bodies.get(recording, 0) + count

    def lines(self) -> Iterator[str]:
        if self.replay:
            total = RecordingTally()
            yield f"{'recording':<72} {'total':>5} {'replay':>6} {'match':>5} {'skip':>4} {'doc':>3}"
            for name, t in sorted(self.replay.items()):
                yield (
                    f"{name[:72]:<72} {t.interactions:>5} {t.replayed:>6} {t.matched:>5} "
                    f"{len(t.skipped):>4} {len(t.documented):>3}"
                )
                total.interactions += t.interactions
                total.replayed += t.replayed
                total.matched += t.matched
                total.skipped += t.skipped
                total.documented += t.documented
                total.mismatched += [f"{name}{m}" for m in t.mismatched]
            yield (
                f"{'emulator replay: ' + str(len(self.replay)) + ' recordings':<72} {total.interactions:>5} "
                f"{total.replayed:>6} {total.matched:>5} {len(total.skipped):>4} {len(total.documented):>3}"
            )
            for name, t in sorted(self.replay.items()):
                for d in t.documented:
                    yield f"  on purpose: {Path(name).name[:48]}{d}"[:118]
            for m in total.mismatched:
                yield f"  MISMATCH {m}"
        if self.product_bodies:
            yield (
                f"product parsing: {sum(self.product_bodies.values())} recorded bodies from "
                f"{len(self.product_bodies)} files through controller/azure"
            )


TALLY = Tally()


class StaticCredential:
    """A token credential for playback: the recorded answers do not look at the token."""

    def get_token(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("recorded-session", 4_102_444_800)

    def get_token_info(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("recorded-session", 4_102_444_800)


def synthetic(
    method: str, url: str, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> Interaction:
    """A REST-spec example's response, answered at the URL the SDK asks (examples carry no URL)."""
    raw = json.dumps(body) if body is not None else ""
    lower = {k.lower(): [v] for k, v in (headers or {}).items()}
    return Interaction("rest-api-specs-examples", 0, method, url, None, status, lower, body, raw)
