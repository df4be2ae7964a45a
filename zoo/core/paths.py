"""Where crystal-zoo keeps what it makes (the cache) and where it looks for data a user provides."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_VARIABLE = "ZOO_CACHE"
DATA_VARIABLE = "MATMINER_DATA"  # the variable matminer itself reads


def cache_root() -> Path:
    """``$ZOO_CACHE``, else the user's cache folder (platformdirs: ``~/.cache/crystal-zoo`` on Linux):
    featurised graphs, generated and downloaded data sets. Everything below it can be deleted; it is
    rebuilt on demand."""
    env = os.environ.get(CACHE_VARIABLE)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("crystal-zoo", appauthor=False))


def resolve_data_dir(data_dir: str | os.PathLike | None, env: str = DATA_VARIABLE) -> tuple[Path | None, str]:
    """(folder, how it was chosen): the argument, else the environment variable ``env``, else
    ``(None, ...)``, which means "download with the data set's own loader"."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "the data_dir argument"
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser(), f"the {env} environment variable"
    return None, f"no data_dir and no {env}"
