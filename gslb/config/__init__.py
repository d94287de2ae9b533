"""The configuration of record and its changes: versions of zones and steering files,
edited by the API and applied incrementally to the running DNS snapshot."""
