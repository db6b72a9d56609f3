"""Security events for relying parties: a transactional outbox of RFC 8417 SETs, delivered by
push (RFC 8935) with retries, exponential backoff and a dead letter an admin can retry."""
