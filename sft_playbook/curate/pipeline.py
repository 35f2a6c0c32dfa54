"""Curation pipeline (filled in by the curation issue)."""
import logging


def main(cfg, args) -> int:
    logging.getLogger(__name__).warning("the curation stages are not implemented yet")
    return 0
