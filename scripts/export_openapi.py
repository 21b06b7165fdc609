"""Export the service's OpenAPI document to docs/openapi.json.

    python scripts/export_openapi.py          # write it
    python scripts/export_openapi.py --check  # exit 1 when it differs from the app's document

The app is built with the simulator's loopback URL so no Novita key is needed; the document does
not depend on settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from novita_manager.app import create_app
from novita_manager.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_JSON = ROOT / "docs" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    settings = load_settings(novita_api_base_url="http://127.0.0.1:8900/gpu-instance/openapi")
    return create_app(settings).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is out of date")
    args = parser.parse_args()
    text = render(openapi_document())
    if args.check:
        if not OPENAPI_JSON.exists() or OPENAPI_JSON.read_text() != text:
            print("docs/openapi.json is out of date: run scripts/export_openapi.py")
            return 1
        return 0
    OPENAPI_JSON.write_text(text)
    print(f"wrote {OPENAPI_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
