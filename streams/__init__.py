"""Stream processing: the negotiation's pure core (``streams.core``) and the plain aiokafka worker
around it (``streams.app``: decode a command, call ``decide`` and ``evolve``, write the events,
results and state documents in one Kafka transaction), with its codec, tables, snapshots and the
request/reply client the API sends commands through."""
