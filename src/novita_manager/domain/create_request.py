"""The Novita create body for a request: its offer and its template (pure).

The registry credential is passed by reference (`imageAuthId`), never fetched and resent, and the
instance carries a marker env var with our id so that, after a create whose outcome is unknown,
the instance can be recognised in the account listing and adopted instead of created twice.
"""

from __future__ import annotations

from novita_manager.domain.offers import Offer
from novita_manager.novita.models import CreateInstanceRequest, EnvVar, Template

MARKER_ENV = "NOVITA_MANAGER_ID"


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
        name=name,
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
    )


def marker_of(envs: list[EnvVar]) -> str | None:
    """The managed-instance id an upstream instance was created for, if it was created by us."""
    return next((env.value for env in envs if env.key == MARKER_ENV and env.value), None)


def carries_marker(envs: list[EnvVar], instance_id: str) -> bool:
    return marker_of(envs) == instance_id
