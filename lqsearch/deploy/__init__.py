"""Deployment: saved artifacts, Larq Compute Engine export and latency, and the larq-zoo-style registry.

Modules: `artifact` (weights `.h5` + a JSON card), `lce` (conversion, op counts,
fallback report, measured latency), `registry` (publish, list, show, load; a
local folder or an http(s) URL) and `registry_files` (how registry files are
located, named and verified).
"""
