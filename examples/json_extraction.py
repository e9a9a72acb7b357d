"""Parallel JSON extraction: every field of a pydantic model in its own constrained branch."""

from __future__ import annotations

from typing import Literal

from _common import budget
from pydantic import BaseModel, Field

import apar_sgl as apar


class Contact(BaseModel):
    name: str = Field(description="full name of the person", max_length=40)
    age: int = Field(ge=0, le=120)
    city: str  # strings without max_length get gen_json's default bound (40 characters)
    role: Literal["engineer", "doctor", "teacher", "other"]
    summary: str = Field(
        max_length=budget(120),
        description="one sentence about the person",
        json_schema_extra={"apar_sequential": True},  # written after, and seeing, the rest
    )


@apar.function
def extract(s, text: str):
    s += apar.system("Extract the requested fields from the text.")
    s += apar.user(text)
    s += apar.assistant_begin()
    s += apar.gen_json("contact", Contact)  # each leaf's token budget follows from its bound
    s += apar.assistant_end()


if __name__ == "__main__":
    state = extract.run("Maria Lopes, 34, is a doctor who lives in Porto and loves surfing.")
    contact = state["contact"]
    print(contact.model_dump_json(indent=2))
    print("branches:", {k: m["completion_tokens"] for k, m in state.meta("contact").items()})
