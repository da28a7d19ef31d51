"""Stream processing: the negotiation's pure core and the faust agents around it."""
