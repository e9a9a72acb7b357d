"""Python DSL for parallel decoding inside one answer."""
