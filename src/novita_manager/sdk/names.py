"""Finding an instance by our id, its Novita id, or its name (for the command line and scripts).

The API takes ids in paths (ours or Novita's) and names only in the by-name operations, so a
reference is tried as an id first, then as a name among the instances that are not deleted
(exactly, case-sensitively, as the by-name operations match). Names need not be unique: several
live instances with the name make it ambiguous, and `AmbiguousName` lists their ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from novita_manager.domain.views import InstanceView
from novita_manager.sdk.calls import ApiResponseError, ServiceError

if TYPE_CHECKING:
    from novita_manager.sdk import ManagerClient

MAX_NAMESAKES = 500  # one page of `GET /api/instances?name=` (names containing the reference)


class AmbiguousName(ServiceError):
    """Several live instances have this name; `candidates` are their views (newest first)."""

    def __init__(self, name: str, candidates: list[InstanceView]) -> None:
        listed = ", ".join(f"{view.id} ({view.status})" for view in candidates)
        super().__init__(f"several instances are named {name!r}: {listed}; use an id instead")
        self.name = name
        self.candidates = candidates


def not_found(reference: str) -> ApiResponseError:
    message = f"No instance with the id, Novita id or name {reference!r}"
    body = {"error": {"code": "INSTANCE_NOT_FOUND", "message": message}}
    return ApiResponseError(404, body, message)


def find_instance(client: ManagerClient, reference: str) -> InstanceView:
    """The instance `reference` names: by id (ours or Novita's), else by exact name."""
    try:
        return client.get_instance(reference)
    except ApiResponseError as error:
        if error.status_code not in (400, 404):  # 400: not even a possible id (too long)
            raise
    page = client.list_instances(name=reference, limit=MAX_NAMESAKES)
    named = [view for view in page.instances if view.name == reference]
    if not named:
        raise not_found(reference)
    if len(named) > 1:
        raise AmbiguousName(reference, named)
    return named[0]
