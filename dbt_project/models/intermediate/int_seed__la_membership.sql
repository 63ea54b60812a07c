-- The LA membership seed with the user's override CSV (regionstat.toml [seeds] la_membership), if any.
{{ config(materialized='table') }}

{{ seed_with_override('la_membership', 'la_membership', ['municipality_code', 'vintage']) }}
