"""Every assumption the service makes about Novita's API, in one declarative list.

Novita's public documentation leaves points open (novita-api.md §12). Rather than bet on one
reading, the client is built to be correct under each plausible one; this module names every such
point, the readings the simulator can play (its `SimulatorConfig` field of the same name), what
the client does so that any reading is safe, and how the point can be checked on a real account
(`novita-manager doctor` imports `READINGS` and reports them). Keep it declarative: code that
acts on a reading lives in the client and the engine, which cite the id here.
"""

from __future__ import annotations

from dataclasses import dataclass

from novita_manager.domain.lifecycle import STATUS_ERROR_GRACE_SECONDS

# Page size the client asks for; a server may silently return fewer (reading `page_size_cap`).
REQUESTED_PAGE_SIZE = 100

# Characters Novita may accept in instance names under the strictest reading (`name_rule`).
STRICT_NAME_PATTERN = r"^[A-Za-z0-9-]+$"

# Capacity refusals recognised in an error's text when its `reason` says something else.
CAPACITY_MESSAGE_MARKERS = (
    "insufficient_resource",
    "insufficient resource",
    "start instance error",
)


@dataclass(frozen=True)
class Reading:
    """One open point of Novita's API.

    `id` is the `SimulatorConfig` field (and the profile key) that plays it; `readings` maps each
    value the simulator can play to what it means; `client` says what the client does so that
    every reading is safe; `check` says how `doctor` (or a person) settles it on a real account.
    """

    id: str
    section: int  # row of the table in novita-api.md §12
    question: str
    readings: dict[str, str]
    client: str
    check: str
    code: str  # where the handling lives


READINGS: tuple[Reading, ...] = (
    Reading(
        id="page_base",
        section=1,
        question="Is pageNum=0 or pageNum=1 the first page of GET /gpu/instances (and /templates)?",
        readings={
            "0": "pageNum=0 is the first page, 1 the second",
            "1": "pageNum=1 is the first page (see page_zero for what 0 answers)",
        },
        client=(
            "Starts at pageNum=0 and walks 0, 1, 2 ... collecting distinct ids; a 400 on 0 "
            "restarts at 1; a page that only repeats the previous one (0 answered like 1) is "
            "skipped. No page can be skipped whichever base applies, repeats are dropped."
        ),
        check="List with pageSize=1 at pageNum 0, 1 and 2 and compare the ids.",
        code="novita/listing.py walk_instance_pages",
    ),
    Reading(
        id="page_zero",
        section=1,
        question="Under base 1, what does pageNum=0 answer?",
        readings={
            "same": "the first page (the same as pageNum=1)",
            "refused": "400 INVALID_PARAMS",
        },
        client="Both are handled by the walk above (a refusal restarts at 1, a repeat is skipped).",
        check="GET /gpu/instances?pageNum=0&pageSize=1: 400, or the same ids as pageNum=1.",
        code="novita/listing.py walk_instance_pages",
    ),
    Reading(
        id="page_size_cap",
        section=7,
        question="Is pageSize honoured up to 100, or silently capped lower?",
        readings={"None": "honoured", "20": "capped at 20 (total still counts all matches)"},
        client=(
            "Asks for 100; when the first page brings fewer items than asked and fewer than "
            "`total`, continues with the size actually returned. A listing is complete only when "
            "the distinct ids seen reach `total` (or an empty page proves the end and agrees): "
            "the service never concludes that an instance is absent from an incomplete listing "
            "(no second create; no row marked gone)."
        ),
        check="GET /gpu/instances?pageSize=100 on an account with more than 20 instances.",
        code="novita/listing.py Listing.complete; engine/provisioning.py; engine/status_sync.py",
    ),
    Reading(
        id="list_shape",
        section=4,
        question="Do list items carry endpoints and connectComponent* like GET does?",
        readings={
            "reduced": "portMappings [{port,type}] without endpoint, no connectComponent*",
            "full": "list items equal the GET object",
        },
        client=(
            "Connection details come from one GET of the instance when it reaches running; the "
            "listing then only updates the status, and known endpoints are kept while it runs."
        ),
        check="Compare one running instance's list item with its GET.",
        code="engine/provisioning.py _details; domain/observations.py merge",
    ),
    Reading(
        id="node_shape",
        section=8,
        question="Is `node` in GET an array of {maxRootfsSize} or an object?",
        readings={"array": "[{maxRootfsSize}] (docs)", "object": "{maxRootfsSize} (SDK)"},
        client="The model accepts both and exposes `max_rootfs_size`.",
        check="GET one instance and look at `node`.",
        code="novita/models/instances.py Instance.node",
    ),
    Reading(
        id="products_default_billing",
        section=2,
        question="What does GET /products return without billingMethod?",
        readings={
            "onDemand": "only on-demand offers (spot-only products missing, spotPrice '0')",
            "all": "every offer",
        },
        client="Always sends billingMethod (spot or onDemand, as the request asks).",
        check="Compare /products with and without billingMethod=spot.",
        code="novita/catalogue.py Catalogue.products",
    ),
    Reading(
        id="product_ids",
        section=3,
        question="Does one product id span clusters, with product-wide availability?",
        readings={
            "spanning": (
                "one id (4090.16c62g) for all clusters; availableDeploy/inventoryState describe "
                "any cluster unless clusterId is sent"
            ),
            "per_cluster": "one id per cluster",
        },
        client=(
            "Sends clusterId with billingMethod on /products so availability is judged for the "
            "chosen cluster, and sends the chosen clusterId on create."
        ),
        check="/products with and without clusterId: same ids in several clusters?",
        code="novita/catalogue.py; domain/offers.py; novita/create_request.py",
    ),
    Reading(
        id="capacity_error",
        section=5,
        question="How does a capacity refusal look?",
        readings={
            "reason": "reason INSUFFICIENT_RESOURCE",
            "message": "another reason; only the message says INSUFFICIENT_RESOURCE",
        },
        client=(
            "Recognised by reason or by message text (CAPACITY_MESSAGE_MARKERS). At create the "
            "next-cheapest deployable offer in the region is tried before failing; at start the "
            "instance is migrated."
        ),
        check="Not checkable read-only; recorded when the service meets one (history, log).",
        code="novita/errors.py is_capacity_refusal; engine/provisioning.py _create",
    ),
    Reading(
        id="status_error",
        section=6,
        question="Is statusError set only on fatal errors, or also transiently?",
        readings={
            "fatal_only": "only on fatal errors",
            "transient": "also while pulling or starting, cleared when the instance runs",
        },
        client=(
            f"A create or start fails on statusError only when the instance is exited with it, "
            f"or when the error persists for STATUS_ERROR_GRACE_SECONDS "
            f"({STATUS_ERROR_GRACE_SECONDS:g} s) across observations."
        ),
        check="Not checkable read-only; the history shows each statusError seen.",
        code="domain/lifecycle.py; domain/observations.py (statusErrorSince)",
    ),
    Reading(
        id="tools_required",
        section=9,
        question="Must the template's tools (Jupyter) be sent on create to be enabled?",
        readings={"true": "yes", "false": "the template alone enables them"},
        client="Always sends the template's tools (port as a string).",
        check="Not checkable read-only.",
        code="novita/create_request.py build_create_request",
    ),
    Reading(
        id="name_rule",
        section=10,
        question="Which characters may an instance name hold?",
        readings={"any": "any text", "strict": "letters, digits and '-' only ('_' refused)"},
        client=(
            "Sends Novita a name that satisfies the strict rule ('_' becomes '-'); our row keeps "
            "the user's name; the search after an unknown create uses the Novita-side name and "
            "our marker env var tells instances apart. A name that cannot be made acceptable is "
            "a 400 at create."
        ),
        check="Not checkable read-only.",
        code="novita/create_request.py novita_name",
    ),
)


def reading(reading_id: str) -> Reading:
    """The reading with this id (KeyError when there is none)."""
    for item in READINGS:
        if item.id == reading_id:
            return item
    raise KeyError(reading_id)
