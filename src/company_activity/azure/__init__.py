"""Azure-only pieces: Data Factory graph, Batch task, stored procedures, Synapse DDL."""
