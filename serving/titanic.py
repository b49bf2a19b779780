"""Titanic routes."""
from fastapi import APIRouter

TITLE = "Titanic survival"
HOME = "/titanic"


def build_router(ctx) -> APIRouter:
    return APIRouter(prefix="/titanic", tags=["titanic"])
