"""The control-plane REST API (FastAPI): zones, RRsets, steered records, versions, audit,
explain. `api.app.create_app` builds it; `gslb serve --api` and `gslb api` serve it."""
