-- The locality names seed with the user's override CSV (regionstat.toml [seeds] localities), if any.
{{ config(materialized='table') }}

{{ seed_with_override('localities', 'locality_names', ['locality_code']) }}
