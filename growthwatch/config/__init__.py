"""Configuration: the declared schema, the checker and the typed config object."""

from growthwatch.config.loader import (
    Config,
    ConfigError,
    InfluxConfig,
    Problem,
    ProductConfig,
    SourceConfig,
    build_config,
    check_data,
    check_file,
    env_problems,
    load_config,
    resolve_env,
)

__all__ = [
    "Config",
    "ConfigError",
    "InfluxConfig",
    "Problem",
    "ProductConfig",
    "SourceConfig",
    "build_config",
    "check_data",
    "check_file",
    "env_problems",
    "load_config",
    "resolve_env",
]
