"""The built-in mock product-usage API and the deterministic data behind it."""
