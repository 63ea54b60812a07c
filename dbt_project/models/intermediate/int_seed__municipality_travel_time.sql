-- The travel-time seed with the user's override CSV (regionstat.toml [seeds] travel_time), if any: a table,
-- because the override is read from a file that views would have to read again at query time.
{{ config(materialized='table') }}

{{ seed_with_override('travel_time', 'municipality_travel_time', ['municipality_code']) }}
