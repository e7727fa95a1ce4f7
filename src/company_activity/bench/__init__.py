"""The performance benchmark (`company-activity bench`)."""
