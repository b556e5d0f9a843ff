"""Where collections come from: a folder of images, a 🤗 dataset, or a CSV/TSV manifest.

Each source yields row dicts that ``ingest`` streams into ``Collection.create``::

    from illustra.sources import FolderSource, ingest
    summary = ingest("my-collection", FolderSource("scans/"))
    print(summary.lines()[0])   # "120 added, 2 skipped (see my-collection/ingest_report.tsv)"
"""

from __future__ import annotations

from .base import IngestContext, IngestSummary, Source, ingest, parse_year
from .bl_flickr import BLFlickrSource
from .bl_hub import BLHubSource
from .downloader import DownloadConfig, Downloader
from .folder import FolderSource
from .hub import HubSource
from .manifest import ManifestSource

PRESETS = {"bl-flickr": BLFlickrSource}

__all__ = [
    "PRESETS",
    "BLFlickrSource",
    "BLHubSource",
    "DownloadConfig",
    "Downloader",
    "FolderSource",
    "HubSource",
    "IngestContext",
    "IngestSummary",
    "ManifestSource",
    "Source",
    "ingest",
    "parse_year",
]
