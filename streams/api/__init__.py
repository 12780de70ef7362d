"""`tasksage api`: the HTTP API (FastAPI on uvicorn). See README "HTTP API"."""
