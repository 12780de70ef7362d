"""Search over stored vectors: pure parts (fusion, query text, tuning, a synthetic corpus).
The database side is processors/postgres/search.py."""
