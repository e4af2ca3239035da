"""Observability adapters: the observer the data plane records into (``observer``), metrics,
provider-key activity and the request-log sink."""
