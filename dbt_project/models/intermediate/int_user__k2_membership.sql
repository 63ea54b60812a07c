-- The user's direct K1/K2/K3 membership (regionstat.toml [seeds] k2_membership): where it names a
-- municipality, int_municipality_categories takes its category as given. Empty without the override.
{{ config(materialized='table') }}

{% if override_path('k2_membership') %}

    select
        municipality_code,
        category,
        source
    from {{ read_override_csv('k2_membership') }}

{% else %}

    select
        cast(null as varchar) as municipality_code,
        cast(null as varchar) as category,
        cast(null as varchar) as source
    where false

{% endif %}
