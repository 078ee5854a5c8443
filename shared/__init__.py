"""Library shared by the gateway and the PDP: settings, JSON, logging, metrics, database, audit."""
