"""Supervised fine-tuning playbook: curate domain data, fine-tune a code model, measure it."""

__version__ = "0.1.0"
