"""Data plane: /v1/{account_id}/{gateway_id}/{provider_slug}/{path...} -> the provider's upstream
(``dataplane.DataPlane``)."""
