"""A small Django app for tests/integration/test_orm_django.py (models and hand-written migrations)."""
