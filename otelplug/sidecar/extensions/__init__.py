"""Extensions: components outside the pipelines (health, storage)."""
