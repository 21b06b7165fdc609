"""Read-only probes of a Novita account: which reading of each ambiguous point (novita-api.md §12)
the account shows, and whether what the service relies on holds. `novita-manager doctor` prints
the report.

Why a probe per reading: the service is built to survive every plausible reading, but a user
moving from the simulator to a real account wants to *see* which one applies before paying for a
GPU, and a reading nobody imagined (pages that overlap, `node` missing) should be a visible
warning rather than a surprise in production. Every probe is a GET; nothing here may create,
start, stop or delete anything (the tests count the simulator's calls by endpoint to prove it).

The decisions (`decide_*`) are pure functions of what the account answered, tested without I/O;
`run_probes` only fetches. The vocabulary of readings is the simulator's (`SimulatorConfig`
fields and values), so a report can be compared with a profile word for word.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from novita_manager.domain.offers import is_deployable, unit_price
from novita_manager.domain.regions import offered_in, region_code, resolve_cluster
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import (
    NovitaBadRequest,
    NovitaError,
    NovitaRateLimited,
    NovitaServerError,
    NovitaUnauthorized,
    NovitaUnavailable,
    is_transient,
)
from novita_manager.novita.models import Cluster, Product
from novita_manager.novita.readings import READINGS, reading

Status = Literal["ok", "warn", "fail", "skip"]
Outcome = Literal["ok", "failed", "unavailable", "unreachable"]

PROBE_PAGE_SIZE = 1  # one item per page is enough to tell page 0 from page 1
CAP_PAGE_SIZE = 100  # the page size the service asks for; a smaller page means a cap
DEFAULT_BILLING_MODE = "spot"  # CONTRACT.md: a create without billingMode asks for spot
CONNECTION_FIELDS = (
    "connectComponentSSH",
    "connectComponentWebTerminal",
    "connectComponentJupyter",
)
RATE_LIMIT_PREFIXES = ("x-ratelimit", "ratelimit", "retry-after")
KEY_REFUSED = "key refused"
LIST_KEYS = ("template", "templates", "instances", "data")  # /templates answers `template`


# ----- what the service does about each point ------------------------------------------------
# The readings (open points of Novita's API) and what the client does about each come from
# `novita/readings.py`, the list the client follows, so the report and the code cannot drift.
# The account checks below are not readings: they are facts the service needs.

ACCOUNT_CHECKS: dict[str, tuple[str, str]] = {
    "key": ("Does Novita accept NOVITA_API_KEY?", "every call sends it; /health says when refused"),
    "clusters": ("Does GET /clusters list clusters?", "regions resolve from it, not a table"),
    "region": ("Does DEFAULT_REGION (or --region) name a cluster?", "used when none is asked"),
    "spot_offers": (
        "Is there a deployable spot offer in the region (billingMethod=spot, clusterId)?",
        "a create without billingMode picks the cheapest deployable spot offer there",
    ),
    "on_demand_offers": (
        "Is there a deployable on-demand offer in the region?",
        "billingMode=onDemand picks the cheapest deployable on-demand offer there",
    ),
    "rate_limit_headers": (
        "Does Novita send X-RateLimit-* or Retry-After headers?",
        "honours Retry-After on 429/503; UPSTREAM_RATE_LIMIT limits it client-side",
    ),
}
PROBED = frozenset(
    {
        "page_base",
        "page_zero",
        "page_size_cap",
        "list_shape",
        "node_shape",
        "products_default_billing",
        "product_ids",
    }
)


def _question(ident: str) -> str:
    if ident in ACCOUNT_CHECKS:
        return ACCOUNT_CHECKS[ident][0]
    try:
        return reading(ident).question
    except KeyError:
        return ""


def _actions() -> dict[str, str]:
    """What the service does, per check id: readings.py's `client` text for the readings."""
    actions = {ident: action for ident, (_, action) in ACCOUNT_CHECKS.items()}
    actions.update({item.id: item.client for item in READINGS})
    return actions


# ----- the report ----------------------------------------------------------------------------


@dataclass
class Check:
    """One line of the report: a question, what the account answered, what the service does."""

    id: str
    status: Status
    observed: str
    action: str = ""
    readings: dict[str, Any] = field(default_factory=dict)  # SimulatorConfig field -> value
    relied: bool = False  # the service cannot work when this fails
    transient: bool = False  # failed because Novita did not answer properly, not a finding

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": _question(self.id),
            "status": self.status,
            "observed": self.observed,
            "service": self.action,
            "readings": self.readings,
            "relied": self.relied,
        }


@dataclass
class Report:
    base_url: str
    region: str
    checks: list[Check] = field(default_factory=list)
    unreachable: str | None = None  # why Novita could not be asked at all
    unavailable: bool = False  # Novita answered, but only with 429/5xx

    @property
    def outcome(self) -> Outcome:
        if self.unreachable is not None:
            return "unavailable" if self.unavailable else "unreachable"
        failed = [check for check in self.checks if check.status == "fail"]
        if any(not check.transient for check in failed):
            return "failed"
        if failed:
            return "unavailable"
        return "ok"

    @property
    def readings(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for check in self.checks:
            merged.update(check.readings)
        return merged

    def check(self, ident: str) -> Check:
        return next(check for check in self.checks if check.id == ident)

    def to_json(self) -> dict[str, Any]:
        return {
            "baseUrl": self.base_url,
            "region": self.region,
            "outcome": self.outcome,
            "unreachable": self.unreachable,
            "readings": self.readings,
            "checks": [check.to_json() for check in self.checks],
        }


class Unreachable(Exception):
    """Novita gave no usable answer to the first call: nothing else is worth asking."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered  # 429/5xx: something answered; else no answer at all


# ----- pure decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    status: Status
    observed: str
    readings: dict[str, Any] = field(default_factory=dict)


def decide_page_base(
    zero: Sequence[str] | None, one: Sequence[str], total: int, size: int, what: str
) -> Verdict:
    """Which pageNum is the first page, from the ids of pageNum=0 (None: refused) and 1.

    Base 0: the two pages differ (or page 1 is empty because everything fit on page 0).
    Base 1: page 0 is refused, empty, or the same as page 1.
    """
    if zero is None:
        return Verdict(
            "ok",
            f"{what}: pageNum=1 is the first page; pageNum=0 is refused (400)",
            {"page_base": 1, "page_zero": "refused"},
        )
    if not zero and not one:
        if total > 0:
            return Verdict(
                "warn", f"{what}: both pages empty although total is {total}: unknown paging"
            )
        return Verdict("warn", f"{what}: undecidable: no items")
    if zero and one:
        if list(zero) == list(one):
            return Verdict(
                "ok",
                f"{what}: pageNum=1 is the first page; pageNum=0 answers the same page",
                {"page_base": 1, "page_zero": "same"},
            )
        if set(zero).isdisjoint(one):
            return Verdict(
                "ok",
                f"{what}: pageNum=0 is the first page, pageNum=1 the second",
                {"page_base": 0},
            )
        return Verdict("warn", f"{what}: pages 0 and 1 overlap without being equal: unknown")
    if zero:  # page 0 has items, page 1 none
        if total <= size:
            return Verdict(
                "ok",
                f"{what}: pageNum=0 is the first page (all {total} on it, pageNum=1 empty)",
                {"page_base": 0},
            )
        return Verdict("warn", f"{what}: pageNum=1 empty although total is {total}: unknown")
    return Verdict(
        "ok",
        f"{what}: pageNum=1 is the first page; pageNum=0 answers an empty page",
        {"page_base": 1, "page_zero": "empty"},
    )


def decide_page_cap(count: int, total: int, asked: int, what: str) -> Verdict:
    """Whether the server honours pageSize=`asked`: a shorter page while more items exist is a
    cap. Fewer items than asked in all means nothing is capped below that number."""
    if count == 0 and total > 0:
        return Verdict("warn", f"{what}: first page empty although total is {total}: unknown")
    if count < asked and count < total:
        return Verdict(
            "ok",
            f"{what}: pageSize capped at {count} (asked {asked}, total {total})",
            {"page_size_cap": count},
        )
    if count >= asked:
        return Verdict(
            "ok", f"{what}: pageSize {asked} honoured ({count} items)", {"page_size_cap": None}
        )
    if total == 0:
        return Verdict("warn", f"{what}: undecidable: no items")
    return Verdict(
        "ok",
        f"{what}: no cap seen: all {total} items on one page (asked {asked})",
        {"page_size_cap": None},
    )


def missing_connection_fields(item: Mapping[str, Any], full: Mapping[str, Any]) -> list[str]:
    """What the GET object carries for connecting that the list item lacks."""
    missing = [key for key in (*CONNECTION_FIELDS, "network") if key in full and key not in item]
    full_ports, item_ports = full.get("portMappings"), item.get("portMappings")
    if isinstance(full_ports, list) and any(
        isinstance(m, dict) and "endpoint" in m for m in full_ports
    ):
        has_all = isinstance(item_ports, list) and all(
            isinstance(m, dict) and "endpoint" in m for m in item_ports
        )
        if not has_all or (not item_ports and full_ports):
            missing.append("portMappings[].endpoint")
    return missing


def decide_list_shape(item: Mapping[str, Any], full: Mapping[str, Any]) -> Verdict:
    missing = missing_connection_fields(item, full)
    others = sorted(key for key in full if key not in item and key not in missing)
    extra = f"; other fields only on GET: {', '.join(others)}" if others else ""
    if missing:
        return Verdict(
            "ok",
            f"list items are reduced: no {', '.join(missing)}{extra}",
            {"list_shape": "reduced"},
        )
    return Verdict("ok", f"list items equal GET objects{extra}", {"list_shape": "full"})


def decide_node_shape(full: Mapping[str, Any]) -> Verdict:
    node = full.get("node")
    if isinstance(node, list):
        return Verdict("ok", "GET node is an array [{maxRootfsSize}]", {"node_shape": "array"})
    if isinstance(node, dict):
        return Verdict("ok", "GET node is an object {maxRootfsSize}", {"node_shape": "object"})
    if node is None:
        return Verdict("warn", "GET has no node field")
    return Verdict("warn", f"GET node is a {type(node).__name__}: unknown shape")


def decide_default_billing(unfiltered: Sequence[Product], spot: Sequence[Product]) -> Verdict:
    """Compare /products without billingMethod to billingMethod=spot: spot-only products missing
    or spot prices lost without the filter mean the default is on-demand only."""
    spot_offers = [p for p in spot if p.spot_price]
    if not spot_offers:
        return Verdict("warn", "undecidable: billingMethod=spot lists no spot offer")
    plain = {p.id: p for p in unfiltered}
    missing = [p.id for p in spot_offers if p.id not in plain]
    repriced = [p.id for p in spot_offers if p.id in plain and not plain[p.id].spot_price]
    if missing or repriced:
        parts = []
        if missing:
            parts.append(f"{len(missing)} spot product(s) missing (e.g. {missing[0]})")
        if repriced:
            parts.append(f"{len(repriced)} without a spot price (e.g. {repriced[0]})")
        return Verdict(
            "ok",
            "without billingMethod only on-demand offers: " + ", ".join(parts),
            {"products_default_billing": "onDemand"},
        )
    return Verdict(
        "ok",
        f"without billingMethod every offer is listed ({len(spot_offers)} spot offers agree)",
        {"products_default_billing": "all"},
    )


def decide_product_ids(products: Sequence[Product]) -> Verdict:
    """A product whose `regions` name two or more clusters is one id spanning clusters (then
    availability is product-wide unless clusterId is sent). `regions: []` (everywhere) is
    ambiguous and does not count."""
    spanning = [p for p in products if len({region_code(r) for r in p.regions}) >= 2]
    everywhere = sum(1 for p in products if not p.regions)
    note = f"; {everywhere} offered everywhere (regions [])" if everywhere else ""
    if spanning:
        first = spanning[0]
        return Verdict(
            "ok",
            f"{len(spanning)} product id(s) span clusters (e.g. {first.id} in "
            f"{len(first.regions)} regions){note}",
            {"product_ids": "spanning"},
        )
    if not products:
        return Verdict("warn", "undecidable: no products")
    return Verdict(
        "ok",
        f"each product id names one cluster ({len(products)} ids){note}",
        {"product_ids": "per_cluster"},
    )


def offers_in(products: Sequence[Product], cluster: Cluster, billing_mode: str) -> list[Product]:
    """Deployable offers of `billing_mode` in `cluster`, cheapest first (the service's rules)."""
    found = [
        (price, p.id, p)
        for p in products
        if offered_in(p.regions, cluster)
        and is_deployable(p)
        and (price := unit_price(p, billing_mode)) is not None
    ]
    return [p for _, _, p in sorted(found, key=lambda item: (item[0], item[1]))]


def describe_offers(offers: Sequence[Product], billing_mode: str, region: str) -> str:
    if not offers:
        return f"no deployable {billing_mode} offer in {region}"
    cheapest = offers[0]
    price = unit_price(cheapest, billing_mode)
    return (
        f"{len(offers)} deployable {billing_mode} offer(s) in {region}; cheapest "
        f"{cheapest.name or cheapest.id} ({cheapest.id}) at ${price:.2f}/GPU-hour"
    )


def rate_limit_headers(headers: httpx.Headers) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.lower().startswith(RATE_LIMIT_PREFIXES)
    }


# ----- fetching ------------------------------------------------------------------------------


class HeaderRecorder(httpx.AsyncBaseTransport):
    """Wraps the real transport to see the rate-limit headers of every answer, 429s included:
    the client hands only successful replies to a parser, and a 429's Retry-After is the most
    telling header of all."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.seen: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.update(rate_limit_headers(response.headers))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Prober:
    """Runs the probes over one client; remembers rate-limit headers of every answer."""

    def __init__(self, client: NovitaClient, recorder: HeaderRecorder | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self._rate_headers: dict[str, str] = {}
        self.calls = 0

    @property
    def rate_headers(self) -> dict[str, str]:
        seen = dict(self._rate_headers)
        if self.recorder is not None:
            seen.update(self.recorder.seen)
        return seen

    async def get(self, path: str, **params: str | int) -> Any:
        def parse(response: httpx.Response) -> Any:
            self._rate_headers.update(rate_limit_headers(response.headers))
            return response.json()

        self.calls += 1
        return await self.client._call("GET", path, parse, params=params)

    async def products(self, **params: str | int) -> list[Product]:
        data = await self.get("/products", **params)
        items = data.get("data") if isinstance(data, dict) else data
        return [Product.model_validate(item) for item in items or []]

    async def page(self, path: str, key: str, page_num: int, size: int) -> tuple[list[Any], int]:
        data = await self.get(path, pageNum=page_num, pageSize=size)
        if not isinstance(data, dict):
            raise TypeError(f"{path}: expected an object")
        items: list[Any] = next(
            (data[k] for k in (key, *LIST_KEYS) if isinstance(data.get(k), list)), []
        )
        total = data.get("total")
        count = int(total) if isinstance(total, int | str) and str(total).isdigit() else 0
        return list(items), count

    async def page_ids(
        self, path: str, key: str, page_num: int, size: int
    ) -> tuple[list[str] | None, int]:
        """Ids of one page, or None when the server refuses this pageNum (400)."""
        try:
            items, total = await self.page(path, key, page_num, size)
        except NovitaBadRequest:
            return None, 0
        ids = [str(item.get("id") or item.get("Id")) for item in items if isinstance(item, dict)]
        return ids, total


async def _guard(
    ident: str, work: Callable[[], Awaitable[list[Check]]], actions: Mapping[str, str]
) -> list[Check]:
    """Run one probe; an upstream error becomes a failed line, not a crash of the report."""
    try:
        result = await work()
    except NovitaError as error:
        return [
            Check(
                ident,
                "fail",
                f"could not ask: {error}"[:300],
                actions.get(ident, ""),
                transient=is_transient(error),
            )
        ]
    except (TypeError, ValueError, KeyError) as error:
        return [Check(ident, "warn", f"unexpected answer: {type(error).__name__}: {error}"[:300])]
    return result


def _line(ident: str, verdict: Verdict, actions: Mapping[str, str], relied: bool = False) -> Check:
    return Check(
        ident,
        verdict.status,
        verdict.observed,
        actions.get(ident, ""),
        dict(verdict.readings),
        relied,
    )


async def run_probes(
    client: NovitaClient, *, base_url: str, region: str, recorder: HeaderRecorder | None = None
) -> Report:
    """Every read-only check against the account behind `client`, in a fixed order. Pass the
    `recorder` the client was built on to see rate-limit headers of failed answers too."""
    actions = _actions()
    report = Report(base_url=base_url, region=region)
    prober = Prober(client, recorder)

    # 1. The key, and reachability: nothing else is worth asking when this fails.
    try:
        data = await prober.get("/clusters")
    except NovitaUnauthorized as error:
        report.checks.append(
            Check(
                "key",
                "fail",
                f"{KEY_REFUSED} by Novita (HTTP {error.status}): set NOVITA_API_KEY to a valid key",
                actions["key"],
                relied=True,
            )
        )
        return report
    except (NovitaRateLimited, NovitaServerError) as error:
        report.unreachable, report.unavailable = f"Novita answered only with errors: {error}", True
        return report
    except NovitaUnavailable as error:
        report.unreachable = f"no answer from Novita: {error}"
        return report
    except NovitaError as error:
        if is_transient(error):
            report.unreachable = f"no answer from Novita at {base_url}: {error.message}"
            return report
        report.checks.append(Check("key", "fail", f"GET /clusters refused: {error}", relied=True))
        return report
    report.checks.append(Check("key", "ok", "key accepted", actions["key"], relied=True))

    items = data.get("data") if isinstance(data, dict) else data
    clusters = [Cluster.model_validate(item) for item in items or []]
    names = ", ".join(sorted(c.name or c.id for c in clusters))
    report.checks.append(
        Check(
            "clusters",
            "ok" if clusters else "fail",
            f"{len(clusters)} cluster(s): {names}" if clusters else "GET /clusters lists none",
            actions["clusters"],
            relied=True,
        )
    )
    cluster = resolve_cluster(region, clusters)
    if cluster is None:
        report.checks.append(
            Check(
                "region",
                "fail",
                f"{region!r} names no cluster (known: {names or 'none'}); set DEFAULT_REGION",
                actions["region"],
                relied=True,
            )
        )
    else:
        report.checks.append(
            Check(
                "region",
                "ok",
                f"{region} is cluster {cluster.id} ({cluster.name})",
                actions["region"],
                relied=True,
            )
        )

    report.checks += await _guard(
        "spot_offers", lambda: _offers(prober, cluster, region, "spot", actions), actions
    )
    report.checks += await _guard(
        "on_demand_offers", lambda: _offers(prober, cluster, region, "onDemand", actions), actions
    )
    report.checks += await _guard(
        "products_default_billing", lambda: _billing(prober, actions), actions
    )
    report.checks += await _guard("page_base", lambda: _paging(prober, actions), actions)
    report.checks += await _guard("list_shape", lambda: _shapes(prober, actions), actions)
    report.checks.append(_rate_limits(prober, actions))
    for item in READINGS:
        if item.id not in PROBED:
            report.checks.append(Check(item.id, "skip", item.check, actions[item.id]))
    return report


async def _offers(
    prober: Prober, cluster: Cluster | None, region: str, mode: str, actions: Mapping[str, str]
) -> list[Check]:
    ident = "spot_offers" if mode == "spot" else "on_demand_offers"
    relied = mode == DEFAULT_BILLING_MODE
    if cluster is None:
        return [Check(ident, "skip", "region unresolved", actions[ident], relied=relied)]
    products = await prober.products(billingMethod=mode, clusterId=cluster.id)
    offers = offers_in(products, cluster, mode)
    if offers:
        status: Status = "ok"
    else:
        status = "fail" if relied else "warn"
    return [
        Check(ident, status, describe_offers(offers, mode, region), actions[ident], relied=relied)
    ]


async def _billing(prober: Prober, actions: Mapping[str, str]) -> list[Check]:
    unfiltered = await prober.products()
    spot = await prober.products(billingMethod="spot")
    return [
        _line("products_default_billing", decide_default_billing(unfiltered, spot), actions),
        _line("product_ids", decide_product_ids([*unfiltered, *spot]), actions),
    ]


async def _paging(prober: Prober, actions: Mapping[str, str]) -> list[Check]:
    """Page base and cap on the instances, and on the templates (every account has some)."""
    verdicts: dict[str, Verdict] = {}
    caps: dict[str, Verdict] = {}
    for path, key, what in (
        ("/gpu/instances", "instances", "instances"),
        ("/templates", "templates", "templates"),
    ):
        zero, total0 = await prober.page_ids(path, key, 0, PROBE_PAGE_SIZE)
        one, total1 = await prober.page_ids(path, key, 1, PROBE_PAGE_SIZE)
        total = max(total0, total1)
        verdicts[what] = decide_page_base(zero, one or [], total, PROBE_PAGE_SIZE, what)
        first = 0 if verdicts[what].readings.get("page_base") == 0 else 1
        items, total = await prober.page(path, key, first, CAP_PAGE_SIZE)
        caps[what] = decide_page_cap(len(items), total, CAP_PAGE_SIZE, what)
    base = _combine("page_base", verdicts["instances"], verdicts["templates"], actions)
    return [
        base,
        _page_zero(base, actions),
        _combine("page_size_cap", caps["instances"], caps["templates"], actions),
    ]


def _page_zero(base: Check, actions: Mapping[str, str]) -> Check:
    """Split `page_zero` (what pageNum=0 answers under base 1) off the page-base line."""
    ident = "page_zero"
    zero = base.readings.pop(ident, None)
    if zero is not None:
        observed = {
            "same": "pageNum=0 answers the same page as pageNum=1",
            "refused": "pageNum=0 is refused (400)",
            "empty": "pageNum=0 answers an empty page",
        }[zero]
        return Check(ident, base.status, observed, actions[ident], {ident: zero})
    if base.readings.get("page_base") == 0:
        return Check(ident, "skip", "not applicable: pageNum=0 is the first page", actions[ident])
    return Check(ident, "warn", "undecidable (see page_base)", actions[ident])


def _combine(
    ident: str, instances: Verdict, templates: Verdict, actions: Mapping[str, str]
) -> Check:
    """One line from the instances' verdict, or the templates' when the instances decide
    nothing (every account has templates); both observations are shown. A cap seen on either
    list wins over "no cap seen"; two decided readings that disagree are a warning."""
    decided = [verdict for verdict in (instances, templates) if verdict.readings]
    if ident == "page_size_cap":
        decided = [v for v in decided if v.readings.get(ident) is not None] or decided
    readings = dict(decided[0].readings) if decided else {}
    status: Status = decided[0].status if decided else "warn"
    seen = {repr(sorted(v.readings.items())) for v in decided}
    if ident == "page_size_cap":
        seen = {repr(v.readings.get(ident)) for v in decided}
    if len(seen) > 1:
        status = "warn"
    observed = f"{instances.observed}; {templates.observed}"
    return Check(ident, status, observed, actions.get(ident, ""), readings)


async def _shapes(prober: Prober, actions: Mapping[str, str]) -> list[Check]:
    """List item vs GET of the same instance, and GET's `node`: needs one instance."""
    item: dict[str, Any] | None = None
    for page_num in (0, 1):  # whichever base: one of the two first pages holds an instance
        try:
            items, _ = await prober.page("/gpu/instances", "instances", page_num, PROBE_PAGE_SIZE)
        except NovitaBadRequest:
            continue
        if items and isinstance(items[0], dict):
            item = items[0]
            break
    if item is None:
        undecided = "undecidable: no instances (create one, then run doctor again)"
        return [
            Check("list_shape", "warn", undecided, actions["list_shape"]),
            Check("node_shape", "warn", undecided, actions["node_shape"]),
        ]
    full = await prober.get("/gpu/instance", instanceId=str(item.get("id")))
    if not isinstance(full, dict):
        raise TypeError("GET /gpu/instance: expected an object")
    if isinstance(full.get("instance"), dict) and "id" not in full:
        full = full["instance"]
    return [
        _line("list_shape", decide_list_shape(item, full), actions),
        _line("node_shape", decide_node_shape(full), actions),
    ]


def _rate_limits(prober: Prober, actions: Mapping[str, str]) -> Check:
    seen = prober.rate_headers
    if seen:
        shown = ", ".join(f"{name}: {value}" for name, value in sorted(seen.items()))
        observed = f"rate-limit headers seen: {shown}"
    else:
        observed = f"no X-RateLimit-* or Retry-After header in {prober.calls} answers"
    return Check("rate_limit_headers", "ok", observed, actions["rate_limit_headers"])
