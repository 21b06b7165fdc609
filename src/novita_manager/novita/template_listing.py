"""Listing Novita's templates (GET /templates) page by page, under every paging reading.

Which page number comes first is not documented (readings `page_base`, `page_zero`), so the walk
starts at pageNum=0, restarts at 1 when 0 is refused, keeps each template id once (0 may answer
like 1) and stops when `total` distinct templates were seen, a page is empty or brings nothing
new, or after `MAX_TEMPLATE_PAGES`. No channel filter is sent: Novita lists the official and
community templates and the account's own without one (the SDK sends none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from novita_manager.http_client import Response
from novita_manager.novita.errors import NovitaBadRequest
from novita_manager.novita.models import Template

if TYPE_CHECKING:
    from novita_manager.novita.client import NovitaClient

PAGE_SIZE = 50
MAX_TEMPLATE_PAGES = 40


def parse_template_page(response: Response) -> tuple[list[Template], int | None]:
    """The templates of one page and the `total` it reports (None when absent)."""
    data: Any = response.json()
    items = data.get("template") if isinstance(data, dict) else data
    if not isinstance(items, list):
        items = []
    total = data.get("total") if isinstance(data, dict) else None
    templates = []
    for item in items:
        if isinstance(item, dict):
            try:
                templates.append(Template.model_validate(item))
            except ValueError:
                continue  # one malformed template does not hide the others
    return templates, total if isinstance(total, int) else None


async def list_templates(client: NovitaClient) -> list[Template]:
    """Every template the account can use, each once, in Novita's order."""
    seen: dict[str, Template] = {}
    page_num = 0
    for _ in range(MAX_TEMPLATE_PAGES):
        query = {"pageNum": page_num, "pageSize": PAGE_SIZE}
        try:
            page, total = await client.call("GET", "/templates", parse_template_page, params=query)
        except NovitaBadRequest:
            if page_num == 0 and not seen:
                page_num = 1  # this server counts pages from 1
                continue
            raise
        fresh = [template for template in page if template.id not in seen]
        seen.update((template.id, template) for template in fresh)
        if not page or (not fresh and page_num > 1) or (total is not None and len(seen) >= total):
            break
        page_num += 1
    return list(seen.values())
