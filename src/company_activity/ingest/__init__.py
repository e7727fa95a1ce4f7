"""The product-usage API client, the fetch into the raw zone, and the raw zone's layout."""
