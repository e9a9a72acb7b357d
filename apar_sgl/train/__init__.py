"""APAR training data: answer-to-fork-tree conversion and the prompts that elicit answers."""
