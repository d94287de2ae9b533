"""The REST API's routes, one module per resource: zones, RRsets, steered records,
versions and audit, state (overrides, RTT), health, explain, metrics."""
