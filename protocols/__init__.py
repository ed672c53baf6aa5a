"""Protocol kinds (what to do, as steps) and the recipes shipped with labspin.

    from labspin.protocols import load_recipe
    recipe = load_recipe("staircase", overrides={"cycles": 10})
    for step in recipe.protocol.steps(): ...

A kind is a `Protocol` subclass with its own ``kind``; defining it registers it
(`labspin.protocols.registry`), so a new kind is its module + its recipe.
"""
from labspin.protocols.base import Demand, ParameterError, Protocol, Segment, Step, param
# imported in this order: the order `labspin recipes` and error messages list the kinds in
from labspin.protocols.loop import Loop
from labspin.protocols.staircase import Staircase
from labspin.protocols.potdep import PotDep
from labspin.protocols.retention import Retention
from labspin.protocols.endurance import Endurance
from labspin.protocols.recipe import PROTOCOLS, Recipe, load_recipe, parse_recipe, shipped_recipes

__all__ = ["Demand", "Endurance", "Loop", "PROTOCOLS", "ParameterError", "PotDep", "Protocol", "Recipe", "Retention",
           "Segment", "Staircase", "Step", "load_recipe", "param", "parse_recipe", "shipped_recipes"]
