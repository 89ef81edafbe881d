"""A run's records: where they live (rundir), their schema, how they are written (log, build) and read (read,
runs), and what readers derive from them (derived). Standard library only: the supervisor imports this."""

from netjail.records.log import RecordLog, utc_timestamp
from netjail.records.read import iter_records
from netjail.records.rundir import RunDir
from netjail.records.schema import DnsRecord, FlowRecord, QuarantineRecord, Record, RunEnd, RunStart

__all__ = [
    "DnsRecord",
    "FlowRecord",
    "QuarantineRecord",
    "Record",
    "RecordLog",
    "RunDir",
    "RunEnd",
    "RunStart",
    "iter_records",
    "utc_timestamp",
]
