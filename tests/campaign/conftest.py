"""The campaign tests reuse the integration tests' recipe builder."""

from tests.integration.conftest import sim_recipe  # noqa: F401
