"""Read-only probes of a Novita account: which reading of each ambiguous point (novita-api.md §12)
the account shows, and whether what the service relies on holds. `novita-manager doctor` prints
the report.

Why a probe per reading: the service is built to survive every plausible reading, but a user
moving from the simulator to a real account wants to *see* which one applies before paying for a
GPU, and a reading nobody imagined (pages that overlap, `node` missing) should be a visible
warning rather than a surprise in production. Every probe is a GET; nothing here may create,
start, stop or delete anything (the tests count the simulator's calls by endpoint to prove it).

This module runs the probes in a fixed order, one function per group (the key and region, the
offers, billing, paging, shapes, rate-limit headers). The decisions (`decide_*` in
`probe_decisions.py`) are pure functions of what the account answered, tested without I/O; the
report is `probe_report.py` and the raw GETs are `prober.py`. The vocabulary of readings is the
simulator's (`SimulatorConfig` fields and values), so a report can be compared with a profile
word for word.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from novita_manager.domain.regions import resolve_cluster
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
from novita_manager.novita.models import Cluster
from novita_manager.novita.probe_decisions import (
    Verdict,
    decide_default_billing,
    decide_list_shape,
    decide_node_shape,
    decide_page_base,
    decide_page_cap,
    decide_product_ids,
    describe_offers,
    offers_in,
)
from novita_manager.novita.probe_report import Check, Report, Status, service_actions
from novita_manager.novita.prober import HeaderRecorder, Prober
from novita_manager.novita.readings import READINGS

PROBE_PAGE_SIZE = 1  # one item per page is enough to tell page 0 from page 1
CAP_PAGE_SIZE = 100  # the page size the service asks for; a smaller page means a cap
DEFAULT_BILLING_MODE = "spot"  # CONTRACT.md: a create without billingMode asks for spot
KEY_REFUSED = "key refused"
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
    actions = service_actions()
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
