"""The Hugging Face Hub, in one place: fastnst's repo ids and tag, reading a repo id, fetching a style's files
into the Hub's cache (the one downloader, for styles and `from_pretrained`), and listing the community's styles.
Publishing stays with training (`training.publish`).

With `HF_HUB_OFFLINE=1`, or when the Hub cannot be reached, `hf_hub_download` answers from the cache; a style that
is not cached then raises `HubError`. Every failure is one of fastnst's errors with one human sentence.
"""
import logging
import threading
from pathlib import Path

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub import constants as hub_constants
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

HUB_TAG = "fastnst"  # every fastnst style on the Hub carries it; the Space lists the tag's repos as community styles
TAGS = [HUB_TAG, "style-transfer", "neural-style-transfer", "image-to-image"]
SPACE_REPO = "fastnst/fastnst"  # the Space: the app, and the code pip installs from its git repo
SPACE_URL = f"https://huggingface.co/spaces/{SPACE_REPO}"
INSTALL_COMMAND = f"pip install git+{SPACE_URL}"
PLACEHOLDER_REPO = "your-username/your-style"  # in a card written before the style has a Hub repo
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


def community_styles(exclude=(), limit: int = 50, timeout: float = 5.0) -> list[str]:
    """Hub repos tagged HUB_TAG, most downloaded first, less those in `exclude`; [] offline, on any error or after
    `timeout` seconds (the list is optional: a page must not wait for it)."""
    if hub_constants.HF_HUB_OFFLINE:
        return []
    found = []

    def fetch():
        try:
            found.extend(m.id for m in HfApi().list_models(filter=HUB_TAG, sort="downloads", limit=limit))
        except Exception as err:  # no network, Hub down, rate-limited: the Space works without the list
            print(f"fastnst: no community styles from the Hub ({type(err).__name__}).")

    thread = threading.Thread(target=fetch, daemon=True, name="fastnst-community")
    # huggingface_hub's HTTP layer logs each of its retries; for this optional list one line (above) says enough
    logging.getLogger("huggingface_hub.utils._http").addFilter(lambda record: record.threadName != thread.name)
    thread.start()
    thread.join(timeout)
    return [] if thread.is_alive() else [repo for repo in found if repo not in exclude]
