"""The service layer: the only place that opens a transaction. API and flows call into it."""
