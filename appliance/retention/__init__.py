"""Retention: alert crops are purged after a set period unless on legal hold; each purge is audited."""
