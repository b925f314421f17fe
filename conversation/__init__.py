"""What the model is shown: the system prompt and the history built from stored messages."""
