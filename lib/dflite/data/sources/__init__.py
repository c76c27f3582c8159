"""Dataset adapters: real on-disk layouts -> media records (path, label, method, split, group, ...).

One adapter per dataset, in a registry (`ADAPTERS`, `get_adapter`): its records, what `inspect` reports,
the expected layout, how it splits and why it skips a file. Extraction, the CLI and the studies read
datasets only through it, so a new dataset is one adapter module plus its test (README, "Extending
dflite"). FaceForensics++, OpenForensics, Celeb-DF v2 and DFDC are read exactly as distributed; the
synthetic set is written in the FF++ and OpenForensics layouts and goes through the same adapters. A
wrong root raises DatasetLayoutError listing what was expected.
"""
from __future__ import annotations

from . import celebdf, dfdc, ffpp, openforensics  # each defines its ADAPTER
from .celebdf import celebdf_records, read_celebdf_test_list
from .common import (
    VIDEO_EXTS,
    Adapter,
    DatasetLayoutError,
    Inspection,
    MediaRecord,
    balance,
    group_split,
    other_files,
    records_frame,
    video_files,
)
from .dfdc import dfdc_records, inspect_dfdc, read_dfdc_metadata
from .ffpp import ffpp_records, inspect_ffpp, read_ffpp_splits
from .openforensics import inspect_openforensics, openforensics_records

ADAPTERS = {a.name: a for a in (ffpp.ADAPTER, openforensics.ADAPTER, celebdf.ADAPTER, dfdc.ADAPTER)}

__all__ = ["ADAPTERS", "VIDEO_EXTS", "Adapter", "DatasetLayoutError", "Inspection", "MediaRecord", "balance",
           "celebdf_records", "dfdc_records", "ffpp_records", "get_adapter", "group_split", "inspect_dfdc",
           "inspect_ffpp", "inspect_openforensics", "openforensics_records", "other_files", "read_celebdf_test_list",
           "read_dfdc_metadata", "read_ffpp_splits", "records_frame", "video_files"]


def get_adapter(name: str) -> Adapter:
    """The adapter registered as `name`; a clear error listing the registered ones otherwise."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(ADAPTERS)}")
    return ADAPTERS[name]
