"""The embedded synthetic world: fictitious people, crafts and countries, generated deterministically."""

from obliviate.world.build import build_world
from obliviate.world.world import World

__all__ = ["World", "build_world"]
