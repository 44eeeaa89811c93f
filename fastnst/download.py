"""Fetch a style's files from the Hugging Face Hub into its cache: the one downloader (styles and `from_pretrained`).

With `HF_HUB_OFFLINE=1`, or when the Hub cannot be reached, `hf_hub_download` answers from the cache; a style that
is not cached then raises `HubError`. Every failure is one of fastnst's errors with one human sentence.
"""
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .errors import HubError, StyleNotFoundError
from .formats import CONFIG_FILE, INFO_FILE, METADATA_FILE, WEIGHTS_FILE

OPTIONAL_FILES = (METADATA_FILE, INFO_FILE)  # title, artist ... and the training recipe, when the repo has them


def fetch_style(repo_id: str, revision=None, subfolder=None, **hub_kwargs) -> Path:
    """config.json + model.safetensors (+ style.json, fastnst.json) of a Hub style; returns their cached folder.

    `hub_kwargs` go to `hf_hub_download` as they are (cache_dir, token, force_download, local_files_only).
    """
    def fetch(filename):
        return hf_hub_download(repo_id, filename, subfolder=subfolder, revision=revision, **hub_kwargs)

    try:
        config = fetch(CONFIG_FILE)
        fetch(WEIGHTS_FILE)
        for name in OPTIONAL_FILES:
            try:
                fetch(name)
            except (RemoteEntryNotFoundError, LocalEntryNotFoundError):
                pass
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        what = f"revision {revision!r} of " if isinstance(err, RevisionNotFoundError) else ""
        raise StyleNotFoundError(f"There is no {what}Hub repo {repo_id!r} (or it is private).") from err
    except RemoteEntryNotFoundError as err:
        raise StyleNotFoundError(f"Hub repo {repo_id!r} has no fastnst style ({CONFIG_FILE} and "
                                 f"{WEIGHTS_FILE}).") from err
    except LocalEntryNotFoundError as err:  # offline (or unreachable) and not cached
        raise HubError(f"Style {repo_id!r} is not in the local cache and the Hub cannot be reached "
                       f"(offline or no network).") from err
    except HFValidationError as err:
        raise StyleNotFoundError(f"{repo_id!r} is not a valid Hub repo id.") from err
    except HfHubHTTPError as err:
        raise HubError(f"The Hub refused {repo_id!r}: {err}.") from err
    except OSError as err:  # connection errors are OSErrors (requests/httpx wrap them)
        raise HubError(f"Could not reach the Hub for {repo_id!r}: {err}.") from err
    return Path(config).parent


def parse_repo_id(name: str):
    """`user/repo@rev` → ("user/repo", "rev"); `user/repo` → ("user/repo", None); anything else → None."""
    repo, _, revision = name.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in name) or name.startswith((".", "/")):
        return None
    return repo, revision or None
