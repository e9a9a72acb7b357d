"""gen_json on the embedded default model (SmolLM2-135M): a valid pydantic instance, fast."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

import apar_sgl as apar


class Pet(BaseModel):
    name: str = Field(max_length=20)
    kind: Literal["cat", "dog", "bird"]
    age: int = Field(ge=0, le=30)


def test_gen_json_on_smollm2_validates_and_matches_the_text():
    @apar.function
    def extract(s, text):
        s += apar.system("Extract the pet's details.")
        s += apar.user(text) + apar.assistant_begin()
        s += apar.gen_json("pet", Pet, max_tokens=16)

    backend = apar.default_backend()
    try:
        state = extract.run("Rex is a 4 year old dog.", backend=backend)
    finally:
        apar.set_default_backend(None)
        backend.shutdown()
    pet = state["pet"]
    assert isinstance(pet, Pet) and pet.kind in ("cat", "dog", "bird")
    assert json.loads(state.text.rsplit("\n", 1)[-1]) == pet.model_dump()
    assert all(m["cached_tokens"] > 0 for m in state.meta("pet").values())
