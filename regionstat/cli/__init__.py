"""The command-line interface (``regionstat``), the offline demo and the local Airflow runner."""
