"""The Novita create body for a request: its offer and its template (pure).

The registry credential is passed by reference (`imageAuthId`), never fetched and resent, and the
instance carries a marker env var with our id so that, after a create whose outcome is unknown,
the instance can be recognised in the account listing and adopted instead of created twice.

Names (readings `name_rule`): our contract allows letters, digits, `-` and `_`, while Novita may
accept only letters, digits and `-`. Novita is sent `novita_name(name)` (`_` becomes `-`), which
satisfies the strict rule; our row keeps the user's name, and the search after an unknown create
asks Novita for the Novita-side name. Two user names may map to one Novita name (`a_b`, `a-b`);
the marker env var tells their instances apart.

Tools (readings `tools_required`): the template's tools (Jupyter) are sent on create, since
Novita may enable them only when asked.
"""

from __future__ import annotations

import re

from novita_manager.domain.offers import Offer
from novita_manager.novita.models import CreateInstanceRequest, EnvVar, Template
from novita_manager.novita.readings import STRICT_NAME_PATTERN

MARKER_ENV = "NOVITA_MANAGER_ID"
MAX_NOVITA_NAME = 255
_STRICT_NAME = re.compile(STRICT_NAME_PATTERN)


class UnacceptableName(ValueError):
    """A name that cannot be turned into one Novita accepts under its strictest rule."""


def novita_name(name: str) -> str:
    """The name sent to Novita for a user's name: `_` becomes `-`; anything else outside
    letters, digits and `-` cannot be made acceptable (UnacceptableName)."""
    candidate = name.replace("_", "-")
    if len(candidate) > MAX_NOVITA_NAME or not _STRICT_NAME.fullmatch(candidate):
        raise UnacceptableName(
            f"name {name!r} cannot be made acceptable to Novita: use letters, digits, '-' or '_'"
        )
    return candidate


def template_tools(template: Template) -> list[dict[str, str]] | None:
    """The template's tools as Novita's create field: `[{name, port (string), type}]`."""
    tools = [
        {"name": tool.name, "port": str(tool.port), "type": (tool.type or "http").lower()}
        for tool in template.tools
        if tool.name and tool.port
    ]
    return tools or None


def template_ports(template: Template) -> str | None:
    """Template ports as Novita's create string: `"8888/http,22/tcp"` (duplicates dropped)."""
    seen: list[str] = []
    for group in template.ports:
        proto = (group.type or "tcp").lower()
        for port in group.ports:
            entry = f"{port}/{proto}"
            if entry not in seen:
                seen.append(entry)
    return ",".join(seen) or None


def build_create_request(
    *,
    instance_id: str,
    name: str,
    gpu_num: int,
    rootfs_size: int,
    offer: Offer,
    template: Template,
) -> CreateInstanceRequest:
    envs = [env for env in template.envs if env.key and env.key != MARKER_ENV]
    envs.append(EnvVar(key=MARKER_ENV, value=instance_id))
    return CreateInstanceRequest(
        name=novita_name(name),
        product_id=offer.product_id,
        gpu_num=gpu_num,
        rootfs_size=rootfs_size,
        image_url=template.image or "",
        image_auth_id=template.image_auth,
        ports=template_ports(template),
        envs=envs,
        cluster_id=offer.cluster_id,
        kind="gpu",
        billing_mode=offer.billing_mode,
        command=template.start_command,
        entrypoint=template.entrypoint,
        min_cuda_version=template.min_cuda_version,
        tools=template_tools(template),
    )


def marker_of(envs: list[EnvVar]) -> str | None:
    """The managed-instance id an upstream instance was created for, if it was created by us."""
    return next((env.value for env in envs if env.key == MARKER_ENV and env.value), None)


def carries_marker(envs: list[EnvVar], instance_id: str) -> bool:
    return marker_of(envs) == instance_id
