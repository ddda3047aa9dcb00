"""A polite crawler for Musinsa product listings, details and photos (see crawler/client.py)."""
