"""Company Activity Pipeline: CRM snapshots and product usage into a daily analytics table."""

__version__ = "0.1.0"
