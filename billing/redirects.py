"""Checkout redirect URLs may only lead back to our own front end."""

from urllib.parse import urlsplit


def on_origin(url: str, origin: str) -> bool:
    target, allowed = urlsplit(url), urlsplit(origin)
    return (target.scheme in ("http", "https") and target.scheme == allowed.scheme
            and target.netloc.lower() == allowed.netloc.lower())
