"""Settings: read once from the environment (Functions app settings), validated, errors name the setting."""

from shared.config.settings import ConfigError, EnvironmentConfig, QueueConnection, Settings, TableConfig

__all__ = ["ConfigError", "EnvironmentConfig", "QueueConnection", "Settings", "TableConfig"]
