"""Request bodies of the API (CONTRACT.md "Instances"), validated strictly; the answers are the
views in `domain/views.py`, shared with the SDK and the webhook payloads.

Field names are camelCase and compatible with the TypeScript service users migrate from.
Request fields are strict: an integer must be a JSON integer (`2`, not `"2"`, `2.0` or `true`) and
a string a JSON string; anything else is a 400 VALIDATION_ERROR naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novita_manager.config.spot import REGION_PATTERN
from novita_manager.domain.limits import DURATION_PATTERN, parse_duration
from novita_manager.webhooks.ssrf import MAX_URL_LENGTH

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
DURATION_TEXT = (
    "A duration: an integer number of seconds (1 to 31622400), or a string such as `90s`, "
    "`30m`, `8h`, `2d` (a number, fractions allowed, then s, m, h or d; at most 366 days)."
)
Duration = (
    Annotated[int, Field(ge=1, le=31_622_400)]
    | Annotated[str, Field(min_length=1, max_length=20, pattern=DURATION_PATTERN)]
)


class _Strict(BaseModel):
    """Unknown fields are refused, and no value is coerced: `"2"`, `2.0` and `true` are not 2."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def _check_http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2000:
        raise ValueError("must be an http:// or https:// URL of at most 2000 characters")
    return value


# Create fields added in the second round (spot life, costs and limits); see idempotency_form.
FIELDS_ADDED_LATER = (
    "regions",
    "maxPricePerHour",
    "fallbackToOnDemand",
    "onReclaim",
    "maxRecoveries",
    "autoStopAfter",
    "autoDeleteAfter",
    "idleStopAfter",
    "maxCost",
)


class CreateInstanceBody(_Strict):
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Instance name: letters, digits, `-` and `_`.",
        examples=["train-llama-1"],
    )
    productName: str = Field(
        min_length=1,
        max_length=200,
        description="GPU product name, e.g. `RTX 4090 24GB`.",
        examples=["RTX 4090 24GB"],
    )
    templateId: str | int = Field(
        description="Novita template id: a string, or an integer (kept as a string); a boolean, "
        "a number with a fraction (`2.0`), null or anything else is refused.",
        examples=["1"],
    )
    gpuNum: int = Field(
        default=1,
        ge=1,
        le=8,
        description='GPUs per instance: a JSON integer (`2`, not `"2"`, `2.0` or `true`).',
    )
    rootfsSize: int = Field(
        default=60,
        ge=1,
        le=6144,
        description="Root disk in GB, a JSON integer; must fit the chosen product's "
        "minRootFS..maxRootFS.",
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Region code (`CN-HK-01`), Novita cluster id or name; "
        "defaults to DEFAULT_REGION.",
    )
    billingMode: Literal["spot", "onDemand"] = Field(default="spot")
    webhookUrl: str | None = Field(
        default=None, description="http(s) URL notified of this instance's events."
    )
    # Spot life (docs/api.md "Spot instances"); each absent field takes its DEFAULT_* setting.
    regions: (
        list[Annotated[str, Field(min_length=1, max_length=100, pattern=REGION_PATTERN)]]
        | (Literal["any"])
        | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Regions allowed besides `region`, in the order to try them (codes, cluster "
        'ids or names), or `"any"` for every cluster, cheapest first. Used for the first '
        "placement, when Novita has no capacity (INSUFFICIENT_RESOURCE: the next-cheapest offer "
        "in the allowed regions) and by `recreate` recoveries. Without `region`, the first "
        "entry is the region. Default: DEFAULT_REGIONS.",
    )
    maxPricePerHour: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="Cap in USD per hour for the whole instance (all GPUs). No offer under it: "
        "400 at create naming the cap; during a recovery the service waits for one until "
        "INSTANCE_STARTUP_TIMEOUT. Default: DEFAULT_MAX_PRICE_PER_HOUR (none).",
    )
    fallbackToOnDemand: bool | None = Field(
        default=None,
        description="For spot requests: pay the on-demand price when no spot offer is under the "
        "cap (or has capacity). Default: DEFAULT_FALLBACK_TO_ON_DEMAND (false).",
    )
    onReclaim: Literal["none", "restart", "migrate", "recreate"] | None = Field(
        default=None,
        description="What to do when Novita reclaims the spot instance: `none` (it rests "
        "`stopped`), `restart` (start it again; Novita refuses a reclaimed node for capacity, "
        "then it is migrated), `migrate` (Novita migrate: a new node, the same Novita id; "
        "**data on the system disk and local disk is lost**, network volumes are kept) or "
        "`recreate` (delete it and create a new instance from the same request, in the allowed "
        "regions under the cap: a new Novita id, the same instance id; the system disk is new "
        "too). Default: DEFAULT_ON_RECLAIM (`none`).",
    )
    maxRecoveries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Recoveries before the next reclaim fails the instance (`instance.failed`). "
        "Default: DEFAULT_MAX_RECOVERIES (3).",
    )

    # Cost and time limits (docs/api.md "Costs and limits"); absent: the DEFAULT_* setting.
    autoStopAfter: Duration | None = Field(
        default=None,
        description="Stop the instance this long after it reached `running` (again after each "
        "start). Default: DEFAULT_AUTO_STOP_AFTER (none). " + DURATION_TEXT,
    )
    autoDeleteAfter: Duration | None = Field(
        default=None,
        description="Delete the instance this long after this request, whatever its state. "
        "Default: DEFAULT_AUTO_DELETE_AFTER (none). " + DURATION_TEXT,
    )
    idleStopAfter: Duration | None = Field(
        default=None,
        description="Stop the running instance once Novita's GPU utilisation stayed under "
        "IDLE_GPU_THRESHOLD percent this long (where Novita reports it). Default: "
        "DEFAULT_IDLE_STOP_AFTER (none). " + DURATION_TEXT,
    )
    maxCost: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Stop the instance when its cost to date (`costToDate`) reaches this many "
        "USD. Default: DEFAULT_MAX_COST (none).",
    )

    def idempotency_form(self) -> dict[str, Any]:
        """The body as its Idempotency-Key hash sees it. Optional fields added after keys were
        first stored are left out while absent, so a key stored by an earlier version still
        matches the same body retried after an upgrade (and is not refused with 422)."""
        form = self.model_dump(mode="json")
        for field in FIELDS_ADDED_LATER:
            if form.get(field) is None:
                form.pop(field, None)
        return form

    @field_validator("autoStopAfter", "autoDeleteAfter", "idleStopAfter")
    @classmethod
    def _duration(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            parse_duration(value)  # ValueError: a 400 naming the field
        return value

    @field_validator("templateId", mode="before")
    @classmethod
    def _template_id_type(cls, value: Any) -> Any:
        # Before validation, so that a boolean (an int to Python) or `2.0` never reaches the
        # union, and the error is one line naming templateId (not one per union member).
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a string or an integer")
        return value

    @field_validator("templateId")
    @classmethod
    def _template_id(cls, value: str | int) -> str:
        text = str(value).strip()
        if not text or len(text) > 255:
            raise ValueError("must be a non-empty id of at most 255 characters")
        return text

    @field_validator("webhookUrl")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _check_http_url(value)


class OperationBody(_Strict):
    webhookUrl: str | None = Field(
        default=None, description="Overrides the instance's webhook URL from now on."
    )

    @field_validator("webhookUrl")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _check_http_url(value)


class OperationByNameBody(OperationBody):
    instanceName: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)


class RedeliverBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="New target URL (checked by the SSRF guard); default: the delivery's URL, "
        "or `WEBHOOK_URL` when it had none.",
    )
