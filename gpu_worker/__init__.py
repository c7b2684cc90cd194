"""The Celery worker for GPU machines: takes job specs, runs runners, reports back.

It needs only the broker URL (and the artifact store): no database credentials.
"""
