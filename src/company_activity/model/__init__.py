"""The warehouse model: dimension and analytics merges, validation, rollback."""
