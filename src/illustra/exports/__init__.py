"""Result sets as files: CSV for spreadsheets and reference managers, and IIIF Presentation 3
manifests for viewers (Mirador, Universal Viewer)."""

from .items import ExportItem, ExportSet, check_export_size, export_items
from .table import CSV_COLUMNS, to_csv

__all__ = ["CSV_COLUMNS", "ExportItem", "ExportSet", "check_export_size", "export_items", "to_csv"]
