"""The simulated template catalogue (GET /templates, /template).

Apart from the other figures because it is the one part of the catalogue the seed changes:
each template's `createdAt` is drawn after CATALOGUE_EPOCH. (The seed drives instance ids,
cluster picks and fault draws elsewhere.)
"""

from __future__ import annotations

import random

from novita_manager.simulator.catalogue_data import REGISTRY_AUTHS
from novita_manager.simulator.catalogue_types import CATALOGUE_EPOCH, Template

_JUPYTER_TOOL = {
    "name": "Jupyter",
    "describe": "JupyterLab on port 8888",
    "port": 8888,
    "type": "http",
}


def build_templates(rng: random.Random) -> tuple[Template, ...]:
    """The templates, their creation times drawn from `rng` in list order."""

    def when() -> int:
        return CATALOGUE_EPOCH + rng.randrange(0, 300 * 86_400)

    return (
        Template(
            id="1",
            name="PyTorch 2.4 (CUDA 12.4)",
            channel="official",
            image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
            ports=(("http", (8888,)), ("tcp", (22,))),
            envs=(("JUPYTER_TOKEN", "novita"),),
            tools=(_JUPYTER_TOOL,),
            rootfs_size=60,
            recommend_cards=(("4090.16c62g.hk1", "1"), ("A100-80GB.14c240g", "1")),
            min_cuda_version="12.4",
            readme="# PyTorch\nJupyterLab on 8888, SSH on 22.",
            created_at=when(),
        ),
        Template(
            id="2",
            name="Ubuntu 22.04 + CUDA 12.4",
            channel="official",
            image="nvidia/cuda:12.4.1-devel-ubuntu22.04",
            ports=(("tcp", (22,)),),
            rootfs_size=30,
            recommend_cards=(("3090.16c62g.hk1", "1"),),
            min_cuda_version="12.4",
            readme="# CUDA base\nSSH on 22.",
            created_at=when(),
        ),
        Template(
            id="3",
            name="vLLM OpenAI server",
            channel="official",
            image="vllm/vllm-openai:v0.6.3",
            ports=(("http", (8000,)), ("tcp", (22,))),
            envs=(("MODEL", "Qwen/Qwen2.5-7B-Instruct"), ("MAX_MODEL_LEN", "8192")),
            rootfs_size=100,
            start_command="vllm serve $MODEL --port 8000",
            recommend_cards=(("4090.16c62g.hk1", "1"), ("H100-80GB.16c200g.usca6", "1")),
            min_cuda_version="12.1",
            readme="# vLLM\nOpenAI API on 8000.",
            created_at=when(),
        ),
        Template(
            id="4",
            name="Stable Diffusion WebUI",
            channel="community",
            image="universonic/stable-diffusion-webui:latest",
            ports=(("http", (7860,)),),
            rootfs_size=80,
            readme="# SD WebUI\nUI on 7860.",
            created_at=when(),
        ),
        Template(
            id="5",
            name="ComfyUI",
            channel="community",
            image="yanwk/comfyui-boot:cu124-slim",
            ports=(("http", (8188,)),),
            rootfs_size=80,
            readme="# ComfyUI",
            created_at=when(),
        ),
        Template(
            id="101",
            name="team-trainer (private)",
            channel="private",
            image="registry.example.com/team/trainer:1.2",
            ports=(("http", (6006,)), ("tcp", (22,))),
            envs=(("WANDB_MODE", "offline"),),
            image_auth=REGISTRY_AUTHS[0].id,
            rootfs_size=120,
            readme="# Private trainer image",
            created_at=when(),
        ),
    )
