"""Upload a published set folder to the Hugging Face Hub (only when asked: `--push-to-hub REPO`).

The token is read from the named environment variable at call time and handed to `HfApi`; it is
never logged, written or rendered. Without it, huggingface_hub falls back to a cached login.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huggingface_hub import HfApi

log = logging.getLogger(__name__)

# The `save_to_disk` copy is for local `load_from_disk`; the Hub reads `data/*.parquet` (README
# `configs`), so the Arrow files would only double the upload.
HUB_IGNORE_PATTERNS: list[str] = ["dataset_dict.json", "*.arrow", "*/dataset_info.json", "*/state.json", ".*"]


def push_to_hub(
    folder: Path | str,
    repo_id: str,
    token_env: str = "HF_TOKEN",
    *,
    private: bool = True,
    commit_message: str | None = None,
    api: HfApi | None = None,
) -> Any:
    """Create the dataset repo if needed and upload `folder` (README, data/, videor1/).

    Returns huggingface_hub's `CommitInfo`.
    """
    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder} has no README.md: not a published set folder")
    token = os.environ.get(token_env) or None
    if token is None:
        log.info("%s is not set; using huggingface_hub's cached login, if any", token_env)
    if api is None:
        from huggingface_hub import HfApi  # imported here: publishing without a push never needs it

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True, token=token)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="dataset",
        token=token,
        commit_message=commit_message or f"videorft: publish {folder.parent.name}/{folder.name}",
        ignore_patterns=list(HUB_IGNORE_PATTERNS),
    )
