"""Everyday pydantic models and prompts for the parallel-JSON bench and its tests.

Written the way a new user writes them: plain ``str``/``int`` fields without ``max_length``,
optional fields, enums, dates, nested objects and lists of objects.
"""

from __future__ import annotations

import datetime
from enum import Enum
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field


class Person(BaseModel):
    name: str
    age: int
    city: str
    hobby: str


class Address(BaseModel):
    street: str
    city: str
    postal_code: str
    country: str


class Product(BaseModel):
    title: str
    brand: str
    price: float = Field(ge=0)
    currency: Literal["EUR", "USD", "GBP"]
    in_stock: bool


class Event(BaseModel):
    name: str
    city: str
    date: datetime.date
    free: bool


class Item(BaseModel):
    product: str
    quantity: int = Field(ge=1)


class Order(BaseModel):
    customer: str
    items: list[Item] = Field(max_length=4)
    total: float


class Company(BaseModel):
    name: str
    industry: str
    headquarters: Address
    employees: int


class Book(BaseModel):
    title: str
    author: str
    year: int
    subtitle: str | None = None


class Genre(str, Enum):
    DRAMA = "drama"
    COMEDY = "comedy"
    ACTION = "action"
    DOCUMENTARY = "documentary"


class Movie(BaseModel):
    title: str
    director: str
    genre: Genre
    minutes: int


class Flight(BaseModel):
    airline: str
    origin: str = Field(description="departure city")
    destination: str = Field(description="arrival city")
    departure: datetime.date
    seat_class: Literal["economy", "business", "first"]


class Recipe(BaseModel):
    dish: str
    ingredients: list[str] = Field(max_length=5)
    minutes: int
    vegetarian: bool


class Contact(BaseModel):
    name: str
    email: str
    phone: str | None = None
    company: str | None = None


class Weather(BaseModel):
    city: str
    temperature_c: float
    condition: Literal["sunny", "cloudy", "rain", "snow"]
    wind_kmh: int


class Case(NamedTuple):
    name: str
    model: type[BaseModel]
    prompts: tuple[str, ...]


CASES = (
    Case(
        "person",
        Person,
        ("Describe a retired sailor.", "Describe a young chef.", "Describe a famous painter."),
    ),
    Case(
        "address",
        Address,
        (
            "Ship it to 12 Elm Road, Leeds LS1 4AB, United Kingdom.",
            "Our office: Rua Augusta 100, 1100-053 Lisbon, Portugal.",
        ),
    ),
    Case(
        "product",
        Product,
        (
            "The Zento X2 headphones by Zento cost 129.99 EUR and are in stock.",
            "Acme's Trail Runner shoes, $89, currently sold out.",
        ),
    ),
    Case(
        "event",
        Event,
        (
            "PyCon Lisboa takes place on 2025-10-14 in Lisbon, free entry.",
            "The Berlin Jazz Night on 2025-06-21 costs 30 euros.",
        ),
    ),
    Case(
        "order",
        Order,
        (
            "Anna Berg ordered 2 coffee mugs and 1 teapot, 45.50 in total.",
            "Order by Tom Reed: 3 notebooks, 10 pens; total 27.",
        ),
    ),
    Case(
        "company",
        Company,
        (
            "Nordlicht GmbH, a solar panel maker with 250 staff, is based at Hafenstrasse 5, "
            "20457 Hamburg, Germany.",
            "Describe a small bakery business.",
        ),
    ),
    Case(
        "book",
        Book,
        (
            "Dune by Frank Herbert was published in 1965.",
            "Sapiens: A Brief History of Humankind, by Yuval Noah Harari, 2011.",
        ),
    ),
    Case(
        "movie",
        Movie,
        (
            "Jaws (1975), directed by Steven Spielberg, runs 124 minutes; a thriller.",
            "Describe a comedy film you like.",
        ),
    ),
    Case(
        "flight",
        Flight,
        (
            "I fly TAP from Lisbon to Paris on 2025-03-02, economy.",
            "Book a business class seat with Lufthansa, Munich to New York, 2025-07-19.",
        ),
    ),
    Case(
        "recipe",
        Recipe,
        (
            "Pancakes: flour, eggs, milk and butter, ready in 20 minutes.",
            "Give me a quick vegetarian pasta recipe.",
        ),
    ),
    Case(
        "contact",
        Contact,
        (
            "Reach Maria Lopes at maria@lopes.pt or +351 912 345 678; she works at Sonae.",
            "My email is tom@example.com, name Tom Reed.",
        ),
    ),
    Case(
        "weather",
        Weather,
        (
            "Oslo today: 3 degrees, snowing, wind 20 km/h.",
            "Describe the weather in a sunny beach town.",
        ),
    ),
)
