"""Paging of the simulator's listings (/gpu/instances, /templates) under the paging readings.

Apart from the engine because both listings share it and its readings (`page_base`,
`page_zero`, `page_size_cap`) are tested on their own.
"""

from __future__ import annotations

from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.errors import invalid_param

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 500
DEFAULT_TEMPLATE_PAGE_SIZE = 20


def page_window(
    config: SimulatorConfig, page_num: int | None, page_size: int | None, default: int
) -> tuple[int, int, int, int]:
    """(offset, items on the page, requested size, page number echoed) under the paging
    readings: `page_base` (0: pageNum=0 is the first page; 1: pageNum=1 is), `page_zero`
    (base 1: pageNum=0 is the first page or 400) and `page_size_cap` (a silent cap).
    An absent pageNum is the first page."""
    if page_num is not None and page_num < 0:
        raise invalid_param("pageNum", "must be >= 0")
    if page_size is not None and page_size < 0:
        raise invalid_param("pageSize", "must be >= 0")
    size = min(page_size or default, MAX_PAGE_SIZE)
    served = min(size, config.page_size_cap) if config.page_size_cap else size
    base = config.page_base
    if page_num is None:
        index = 0
    elif base == 0:
        index = page_num
    elif page_num == 0:
        if config.page_zero == "refused":
            raise invalid_param("pageNum", "must be >= 1")
        index = 0
    else:
        index = page_num - 1
    return index * served, served, size, index + base
