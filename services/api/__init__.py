"""The HTTP API (SPEC section 8): one door per party, on top of the stream workers and the read model."""
