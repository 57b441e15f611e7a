"""react_data: the MARS layout, the synthetic MARS generator, Parquet shards, storage and streaming.

Importing this package never imports ray (only ``react_data.stream`` does).
"""

from react_data import schema
from react_data.batch import ReactionBatch

__all__ = ["ReactionBatch", "schema"]
