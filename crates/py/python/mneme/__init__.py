"""mneme: KATO's Python client, over HTTP or in process.

``KATOClient(base_url=...)`` speaks HTTP to any KATO-compatible server (KATO, ``mneme serve``);
``KATOClient()`` without a ``base_url`` runs mneme's pattern engine in this process on a data
directory (``data_dir=``, default ``$MNEME_DATA_DIR``, else ``.mneme``), through the server's
own request handling, so both answer the same bytes.
"""

from ._native import VERSION as __version__
from ._native import StoreBusyError
from .client import KATOClient, KATOError

__all__ = ["KATOClient", "KATOError", "StoreBusyError", "__version__"]
